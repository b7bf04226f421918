//! Training: optimisers against PyTorch's trajectories, checkpoints, an exact resume, a stop on
//! a non-finite loss, and `eval --run` agreeing with the run's own final evaluation. Runs on a
//! tiny generated dataset so that it takes seconds.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use lifted::Progress;
use lifted::dataset::DatasetRef;
use lifted::train::model::Architecture;
use lifted::train::optim::{OptimConfig, Optimizer, OptimizerKind, Schedule};
use lifted::train::{TrainConfig, TrainError, TrainRequest};

use crate::support::images::fixtures;
use crate::support::{lifted, prepare_options, stderr, stdout};

#[test]
fn optimisers_follow_pytorchs_trajectories() {
    let text = std::fs::read_to_string(fixtures().join("optim/golden.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for case in cases {
        let s = &case["settings"];
        let kind = if case["kind"] == "sgd" {
            OptimizerKind::Sgd
        } else {
            OptimizerKind::AdamW
        };
        let config = OptimConfig {
            kind,
            lr: case["lr"].as_f64().unwrap(),
            momentum: s["momentum"].as_f64().unwrap_or(0.0),
            weight_decay: s["weight_decay"].as_f64().unwrap(),
            head_lr_mult: 10.0,
            betas: (
                s["betas"][0].as_f64().unwrap_or(0.9),
                s["betas"][1].as_f64().unwrap_or(0.999),
            ),
            eps: s["eps"].as_f64().unwrap_or(1e-8),
            schedule: Schedule::Constant,
        };
        let w0: Vec<f64> = case["w0"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let a = Var::new(&w0[..3], &Device::Cpu).unwrap();
        let b = Var::new(&w0[3..], &Device::Cpu).unwrap();
        let mut optimizer = Optimizer::new(
            config,
            vec![
                (vec![("a".to_string(), a.clone())], 1.0),
                (vec![("b".to_string(), b.clone())], 10.0),
            ],
        );
        for (grad, expected) in case["grads"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["trajectory"].as_array().unwrap())
        {
            let g: Vec<f64> = grad
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            // A loss whose gradient is g: Σ g·w.
            let loss = a
                .as_tensor()
                .mul(&Tensor::new(&g[..3], &Device::Cpu).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .add(
                    &b.as_tensor()
                        .mul(&Tensor::new(&g[3..], &Device::Cpu).unwrap())
                        .unwrap()
                        .sum_all()
                        .unwrap(),
                )
                .unwrap();
            optimizer.step(&loss.backward().unwrap()).unwrap();
            let mut now = a.as_tensor().to_vec1::<f64>().unwrap();
            now.extend(b.as_tensor().to_vec1::<f64>().unwrap());
            for (x, e) in now.iter().zip(expected.as_array().unwrap()) {
                assert!(
                    (x - e.as_f64().unwrap()).abs() < 1e-12,
                    "{}: {x} vs {e}",
                    case["kind"]
                );
            }
        }
    }
}

/// A folder of 12 classes × 6 generated 16×16 images, prepared under `data` as `shapes`.
pub(crate) fn tiny_dataset(root: &Path, data: &Path) {
    let folder = root.join("shapes");
    for class in 0..12u32 {
        for i in 0..6u32 {
            let img = image::RgbImage::from_fn(16, 16, |x, y| {
                let stripe = ((x * (class % 4 + 1) + y * (class / 4 + 1)) / 3) % 2 == 0;
                let noise = (x * 7 + y * 13 + i * 31 + class * 5) % 40;
                let v = if stripe {
                    200 + noise as u8 / 2
                } else {
                    30 + noise as u8
                };
                image::Rgb([v, v.wrapping_add((class * 9) as u8), 255 - v])
            });
            let path = folder.join(format!("c{class:02}/{i}.png"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            img.save(&path).unwrap();
        }
    }
    lifted::prepare::prepare(&DatasetRef::Path(folder), &prepare_options(data)).unwrap();
}

pub(crate) fn tiny_config(data: &Path, epochs: u64) -> TrainConfig {
    let mut c = TrainConfig::defaults(
        lifted::train::Protocol::Paper,
        "shapes",
        data.to_path_buf(),
        Architecture::Small,
    );
    c.model.width = 4;
    c.model.embedding = 8;
    c.sampler.classes_per_batch = 3;
    c.sampler.per_class = 2;
    c.epochs = epochs;
    c.checkpoint_every = 1;
    c.pack.size = 16;
    c.augment = lifted::loader::Augment::RandomResizedCrop {
        size: 16,
        scale: (0.6, 1.0),
        ratio: (0.8, 1.25),
        flip: true,
    };
    c.eval_crop = 16;
    c.threads = 2;
    c.eval.kmeans_runs = 1;
    c
}

pub(crate) fn request(
    config: TrainConfig,
    out: Option<PathBuf>,
    resume: Option<PathBuf>,
    resume_epochs: Option<u64>,
) -> TrainRequest {
    TrainRequest {
        config,
        out,
        resume,
        resume_epochs,
        stop_after: None,
        progress: Progress::hidden(),
    }
}

/// (global step, loss) of every step record in a run's log.
fn losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "step")
        .map(|r| {
            (
                r["global_step"].as_u64().unwrap(),
                r["loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_resumed_run_repeats_the_uninterrupted_run_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_dataset(dir.path(), &data);
    // Cosine decay and dropout, so that the schedule's position and the dropout masks must
    // also be restored exactly.
    let config = |epochs| {
        let mut c = tiny_config(&data, epochs);
        c.optim.schedule = Schedule::Cosine { total: epochs };
        c.model.dropout = 0.3;
        c
    };
    let whole = dir.path().join("whole");
    let summary = lifted::train::run(&request(config(4), Some(whole.clone()), None, None)).unwrap();
    assert_eq!((summary.epochs, summary.steps), (4, 8));
    for file in ["weights.safetensors", "optimizer.safetensors", "state.json"] {
        assert!(whole.join("checkpoint").join(file).is_file(), "{file}");
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.join("checkpoint/state.json")).unwrap())
            .unwrap();
    assert_eq!(
        (state["epoch"].as_u64(), state["global_step"].as_u64()),
        (Some(4), Some(8))
    );
    let after = summary.after.clone().expect("a finished run is evaluated");

    // The same run stopped after one epoch, then after another, then resumed to the end:
    // the same losses, bit for bit, and the same final metrics.
    let parts = dir.path().join("parts");
    let first = lifted::train::run(&TrainRequest {
        stop_after: Some(1),
        ..request(config(4), Some(parts.clone()), None, None)
    })
    .unwrap();
    assert!(first.after.is_none());
    assert!(first.to_string().contains("--resume"), "{first}");
    lifted::train::run(&TrainRequest {
        stop_after: Some(1),
        ..request(config(4), None, Some(parts.clone()), None)
    })
    .unwrap();
    let resumed = lifted::train::run(&request(config(4), None, Some(parts.clone()), None)).unwrap();
    assert!(resumed.before.is_none());
    assert_eq!(losses(&whole).len(), 8);
    assert_eq!(losses(&parts), losses(&whole));
    assert_eq!(resumed.after.unwrap().retrieval, after.retrieval);

    // Extending a finished run continues its log.
    let extended =
        lifted::train::run(&request(config(4), None, Some(parts.clone()), Some(5))).unwrap();
    assert_eq!((extended.epochs, extended.steps), (5, 10));
    assert_eq!(losses(&parts)[..8], losses(&whole)[..]);

    // A second run into the same folder is refused with what to do.
    let err = lifted::train::run(&request(config(4), Some(whole.clone()), None, None)).unwrap_err();
    assert!(matches!(err, TrainError::RunExists(_)), "{err}");
    assert!(err.to_string().contains("resume it"), "{err}");

    // `lifted eval --run` scores the trained network as the run's final evaluation did, and
    // draws its pictures and exports its embeddings.
    let pictures = dir.path().join("pictures");
    std::fs::create_dir_all(&pictures).unwrap();
    let output = lifted()
        .args([
            "eval",
            "--run",
            whole.to_str().unwrap(),
            "--json",
            "--kmeans-runs",
            "0",
        ])
        .arg("--grid")
        .arg(pictures.join("grid.png"))
        .arg("--tsne")
        .arg(pictures.join("tsne.png"))
        .arg("--export")
        .arg(pictures.join("x.npy"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        report["retrieval"]["recall_at"][0][1].as_f64().unwrap(),
        after.retrieval.recall_at[0].1
    );
    // 36 test images: 8 queries of 96-pixel tiles with 6 neighbours each.
    let grid = image::open(pictures.join("grid.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        (96 + 16 + 6 * 100 - 4, 8 * 100 - 4)
    );
    let tsne = image::open(pictures.join("tsne.png")).unwrap();
    assert_eq!((tsne.width(), tsne.height()), (1200, 1200));
    let exported = lifted::eval::io::read_embeddings(&pictures.join("x.npy")).unwrap();
    assert_eq!(exported.dims(), [36, 8]);

    // `lifted plot` draws the run's curves from its log.
    let output = lifted()
        .args(["plot", whole.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let svg = std::fs::read_to_string(whole.join("curves.svg")).unwrap();
    for text in [
        "loss per step",
        "epoch mean",
        "learning rate",
        "R@1",
        "MAP@R",
        "<polyline",
    ] {
        assert!(svg.contains(text), "curves.svg lacks {text}");
    }
    let curves = lifted::plot::curves::read_run(&whole).unwrap();
    assert_eq!(curves.loss.len(), 8);
    assert_eq!(curves.epoch_loss.len(), 4);
    assert_eq!(curves.unreadable_lines, 0);
    let recall = &curves.metrics.iter().find(|(n, _)| n == "R@1").unwrap().1;
    assert_eq!(
        recall.last().unwrap(),
        &(4.0, after.retrieval.recall_at[0].1)
    );

    // `lifted train --resume RUN_DIR` needs no dataset: the run's config names it.
    let output = lifted()
        .args([
            "train",
            "--resume",
            whole.to_str().unwrap(),
            "--epochs",
            "5",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(losses(&whole).len(), 10);
    let output = lifted().args(["train", "--quiet"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("<DATASET>"), "{}", stderr(&output));

    // A grid needs the images of a run.
    let output = lifted()
        .args([
            "eval",
            "--embeddings",
            "x.npy",
            "--labels",
            "y.npy",
            "--grid",
            "g.png",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("needs --run RUN_DIR"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn two_runs_with_the_same_seed_are_identical_whenever_the_loss_is_read_and_another_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_dataset(dir.path(), &data);
    // Issue 15: how often the loss is read back changes nothing but when the log is written.
    let run = |name: &str, seed: u64, check_every: u64| {
        let mut c = tiny_config(&data, 2);
        c.sampler.seed = seed;
        c.check_every = check_every;
        let out = dir.path().join(name);
        lifted::train::run(&request(c, Some(out.clone()), None, None)).unwrap();
        (
            losses(&out),
            std::fs::read(out.join("checkpoint/weights.safetensors")).unwrap(),
        )
    };
    let (a, b, c) = (run("a", 7, 1), run("b", 7, 2), run("c", 8, 16));
    assert!(a.0.len() >= 3, "enough steps to read back mid-epoch");
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
}

#[test]
fn a_non_finite_loss_stops_training_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_dataset(dir.path(), &data);
    let mut config = tiny_config(&data, 50);
    // Adam's steps are about lr in size whatever the gradient, so every weight overflows f32.
    config.optim.kind = OptimizerKind::AdamW;
    config.optim.lr = 1e39;
    // Read back at every step, and once per 1000 steps: the same step is named.
    let mut named = Vec::new();
    for check_every in [1, 1000] {
        config.check_every = check_every;
        let out = dir.path().join(format!("run{check_every}"));
        let err = lifted::train::run(&request(config.clone(), Some(out), None, None)).unwrap_err();
        match &err {
            TrainError::NonFinite {
                value,
                epoch,
                step,
                what,
            } => {
                assert!(!value.is_finite());
                named.push((*epoch, *step, *what));
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        assert!(err.to_string().contains("lower learning rate"), "{err}");
    }
    assert_eq!(named[0], named[1]);
}

#[test]
fn the_cuda_device_without_a_cuda_build_is_explained() {
    if cfg!(feature = "cuda") {
        return; // With a CUDA build the device may well exist.
    }
    let err = lifted::train::trainer::device("cuda:0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("the `cuda` feature"), "{err}");
    assert!(
        lifted::train::trainer::device("tpu")
            .unwrap_err()
            .to_string()
            .contains("cpu or cuda:N")
    );
}
