//! Issue 14: ImageNet weights fetched from a local server, verified, read without Python and
//! loaded by name, computing PyTorch's features. The checkpoints are `torch.save` files of
//! torchvision's GoogLeNet and ResNet-18 and Cadene's BN-Inception (legacy and zip formats,
//! and safetensors), written with patterned weights by `tools/fixtures/make_weights.py`, which
//! also recorded PyTorch's features (`tests/fixtures/weights/reference.json`).

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use lifted::Progress;
use lifted::fetch::FetchError;
use lifted::train::model::{Architecture, BnMode, EmbeddingNet, ModelConfig};
use lifted::weights::{self, WeightsError, WeightsSpec};
use serde_json::Value;

use crate::support::http::{Fault, Server};
use crate::support::images::fixtures;
use crate::support::{fast_fetch, lifted, stderr, stdout, write};

fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("weights/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The bytes `torch.save` wrote (the fixture is gzipped).
fn checkpoint(name: &str) -> Vec<u8> {
    let gz = std::fs::read(fixtures().join(format!("weights/{name}.gz"))).unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn sha256_of(name: &str) -> String {
    reference()["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A weight manifest with one entry per (name, network, file), served by `server`; the first
/// entry is checked by its whole SHA-256, the others by torchvision-style 8-digit prefixes.
fn manifest(dir: &Path, server: &Server, entries: &[(&str, &str, &str)]) -> PathBuf {
    let mut text = String::new();
    for (i, (name, arch, file)) in entries.iter().enumerate() {
        let hash = sha256_of(file);
        let check = if i == 0 {
            format!("sha256 = \"{hash}\"")
        } else {
            format!("sha256_prefix = \"{}\"", &hash[..8])
        };
        let kind = if file.ends_with(".safetensors") {
            "safetensors"
        } else {
            "pth"
        };
        text.push_str(&format!(
            "[[weights]]\nname = \"{name}\"\narch = \"{arch}\"\ntitle = \"test\"\nlicence = \"test\"\n\n\
             [weights.file]\nname = \"{file}\"\n{check}\nkind = \"{kind}\"\n\n\
             [[weights.file.sources]]\nurl = \"{}\"\n\n",
            server.url(&format!("/{file}"))
        ));
    }
    write(dir, "weights.toml", text.as_bytes())
}

/// A server on 127.0.0.1 serving the fixture checkpoint `file` as it is, and a manifest that
/// lists it as `name` for `arch`.
fn serving_one(dir: &Path, name: &str, arch: &str, file: &str) -> (Server, PathBuf) {
    let server = Server::start();
    server.route(&format!("/{file}"), checkpoint(file), vec![], Fault::Serve);
    let manifest = manifest(dir, &server, &[(name, arch, file)]);
    (server, manifest)
}

/// The reference input: ImageNet-normalised RGB, [2, 3, 96, 96].
fn input() -> Tensor {
    let mut values = Vec::with_capacity(2 * 3 * 96 * 96);
    for n in 0..2 {
        for c in 0..3 {
            for h in 0..96 {
                for w in 0..96 {
                    let v = 0.37 * n as f32 + 1.3 * c as f32 + 0.11 * h as f32 + 0.07 * w as f32;
                    values.push(1.5 * v.sin());
                }
            }
        }
    }
    Tensor::from_vec(values, (2, 3, 96, 96), &Device::Cpu).unwrap()
}

/// A network `arch` with an 8-d embedding, on the CPU, and the map of its variables.
fn network(arch: Architecture, bn: BnMode, dropout: f32) -> (EmbeddingNet, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config = ModelConfig {
        arch,
        embedding: 8,
        bn,
        width: 16,
        dropout,
    };
    (EmbeddingNet::new(config, &vb).unwrap(), varmap)
}

/// The pooled features of `arch` with the weights at `path`.
fn features(arch: Architecture, path: &Path) -> Vec<f32> {
    let (net, varmap) = network(arch, BnMode::Frozen, 0.0);
    let report = weights::load_into(&varmap, path, &["embedding."]).unwrap();
    assert!(report.loaded > 50, "{report:?}");
    net.features(&input(), false)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn published_checkpoints_are_fetched_verified_and_give_pytorchs_features() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let cases = [
        (
            "googlenet",
            "googlenet",
            "googlenet.pth",
            Architecture::GoogLeNet,
        ),
        (
            "resnet18",
            "resnet18",
            "resnet18.pth",
            Architecture::ResNet18,
        ),
        (
            "resnet18-st",
            "resnet18",
            "resnet18.safetensors",
            Architecture::ResNet18,
        ),
        (
            "bninception",
            "bninception",
            "bninception.pth",
            Architecture::BnInception,
        ),
    ];
    for (_, _, file, _) in &cases {
        server.route(&format!("/{file}"), checkpoint(file), vec![], Fault::Serve);
    }
    let entries: Vec<(&str, &str, &str)> = cases.iter().map(|c| (c.0, c.1, c.2)).collect();
    let manifest = manifest(dir.path(), &server, &entries);
    let data = dir.path().join("data");
    let reference = reference();
    for (name, key, file, arch) in cases {
        let spec = WeightsSpec::Named(name.to_string());
        let resolve = || {
            weights::resolve(
                &spec,
                arch,
                Some(&manifest),
                &data,
                &fast_fetch(),
                Progress::hidden(),
            )
            .unwrap()
        };
        let resolved = resolve();
        assert_eq!(resolved.path, data.join("weights").join(file));
        assert_eq!(resolved.sha256, sha256_of(file));
        let ours = features(arch, &resolved.path);
        let theirs: Vec<f32> = reference["features"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let scale = theirs.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        eprintln!(
            "{name} ({file}): max |lifted − PyTorch| = {worst:.2e} (features up to {scale:.2})"
        );
        assert!(worst <= 1e-4, "{name}: {worst} from PyTorch's features");
        // A second use re-hashes the cached copy and downloads nothing.
        let before = server.requests_for(&format!("/{file}")).len();
        assert_eq!(resolve().sha256, resolved.sha256);
        assert_eq!(server.requests_for(&format!("/{file}")).len(), before);
    }
}

#[test]
fn a_corrupted_download_is_refused_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let mut bytes = checkpoint("resnet18.pth");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    server.route("/resnet18.pth", bytes, vec![], Fault::Serve);
    let manifest = manifest(
        dir.path(),
        &server,
        &[("resnet18", "resnet18", "resnet18.pth")],
    );
    let data = dir.path().join("data");
    let err = weights::resolve(
        &WeightsSpec::Named("resnet18".into()),
        Architecture::ResNet18,
        Some(&manifest),
        &data,
        &fast_fetch(),
        Progress::hidden(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            WeightsError::Fetch(FetchError::AllSourcesFailed { failures, .. })
                if failures[0].reason.contains("SHA-256")
        ),
        "{err:?}"
    );
    assert!(!data.join("weights/resnet18.pth").exists());
}

#[test]
fn a_checkpoint_missing_or_misshaping_a_tensor_is_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "broken.pth", &checkpoint("resnet18-broken.pth"));
    let (_net, varmap) = network(Architecture::ResNet18, BnMode::Frozen, 0.0);
    let err = weights::load_into(&varmap, &path, &["embedding."]).unwrap_err();
    let WeightsError::Mismatch {
        differences, total, ..
    } = &err
    else {
        panic!("expected a mismatch, got {err:?}");
    };
    assert_eq!(*total, 2, "{differences:?}");
    assert!(
        differences.contains(&"layer2.0.conv1.weight is missing".to_string()),
        "{differences:?}"
    );
    assert!(
        differences.contains(
            &"layer4.1.bn2.running_var is [500] in the file but [512] in the network".to_string()
        ),
        "{differences:?}"
    );
    // Nothing was loaded: the network keeps its initial weights.
    let untouched = varmap.data().lock().unwrap()["conv1.weight"]
        .as_tensor()
        .clone();
    let file = weights::read_tensors(&path).unwrap();
    let diff = (untouched - &file["conv1.weight"])
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 0.0, "a refused file must not be half loaded");
    // Another network's weights are refused by name before anything is fetched.
    let err = weights::resolve(
        &WeightsSpec::Named("googlenet".into()),
        Architecture::ResNet18,
        None,
        dir.path(),
        &fast_fetch(),
        Progress::hidden(),
    )
    .unwrap_err();
    assert!(matches!(err, WeightsError::WrongNetwork { .. }), "{err:?}");
    // A file that is no checkpoint at all says so.
    let junk = write(dir.path(), "junk.pth", b"<html>not found</html>");
    let err = weights::read_tensors(&junk).unwrap_err();
    assert!(
        err.to_string().contains("neither a PyTorch checkpoint"),
        "{err}"
    );
}

#[test]
fn damaged_checkpoints_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["googlenet.pth", "resnet18.pth"] {
        let bytes = checkpoint(name);
        // Cut inside the pickles, the storage table and the tensor data.
        for cut in [20, 200, 2_000, 20_000, bytes.len() / 2, bytes.len() - 1] {
            let path = write(dir.path(), "cut.pth", &bytes[..cut]);
            assert!(weights::read_tensors(&path).is_err(), "{name} cut at {cut}");
        }
    }
}

#[test]
fn the_weights_command_lists_and_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, manifest) = serving_one(dir.path(), "resnet18", "resnet18", "resnet18.pth");
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        lifted()
            .args(args)
            .arg("--manifest")
            .arg(&manifest)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap()
    };
    let output = run(&["weights", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("resnet18"), "{}", stdout(&output));
    assert!(!stdout(&output).contains("(cached)"));
    let output = run(&["weights", "fetch", "resnet18", "--quiet"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&sha256_of("resnet18.pth")),
        "{}",
        stdout(&output)
    );
    assert!(data.join("weights/resnet18.pth").is_file());
    let output = run(&["weights", "list", "--json"]);
    let listed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(listed[0]["cached"], true, "{listed}");
    let output = run(&["weights", "fetch", "resnet-18"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no published weights are named `resnet-18`"),
        "{}",
        stderr(&output)
    );
    // The built-in manifest lists the paper's network and BN-Inception.
    let output = lifted()
        .args(["weights", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    for wanted in ["googlenet", "resnet18", "resnet50", "bninception"] {
        assert!(names.contains(&wanted), "{names:?}");
    }
}

#[test]
fn train_on_cub_starts_from_the_published_googlenet_and_records_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, manifest) = serving_one(dir.path(), "googlenet", "googlenet", "googlenet.pth");
    let data = dir.path().join("data");
    let fixture = crate::support::datasets::cub();
    let tgz = crate::support::datasets::pack(&fixture, lifted::manifest::FileKind::TarGz);
    let archive = write(dir.path(), "CUB_200_2011.tgz", &tgz);
    let output = lifted()
        .args([
            "prepare-data",
            "cub200",
            "--quiet",
            "--allow-unverified",
            "--archive",
        ])
        .arg(&archive)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // No --model and no --weights: the paper's protocol, GoogLeNet from its ImageNet weights.
    let run = dir.path().join("run");
    let output = lifted()
        .args([
            "train",
            "cub200",
            "--quiet",
            "--json",
            "--classes",
            "2",
            "--per-class",
            "2",
        ])
        .args(["--epochs", "1", "--threads", "2", "--weights-manifest"])
        .arg(&manifest)
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(summary["steps"].as_u64().unwrap() >= 1, "{summary}");
    let settings = summary["settings"].as_str().unwrap();
    assert!(
        settings.starts_with("Protocol paper with googlenet from weights googlenet (SHA-256"),
        "{settings}"
    );
    for part in [
        "embedding 512",
        "dropout 0.4",
        "SGD lr 0.0001 momentum 0.9 weight decay 0.0002, head ×10",
        "JPEG 256, pad-square",
        "random 227 crops with flips",
        "centre 227 crops",
    ] {
        assert!(settings.contains(part), "{part}: {settings}");
    }
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["pretrained"]["sha256"],
        sha256_of("googlenet.pth"),
        "{config}"
    );
    assert_eq!(config["pretrained"]["name"], "googlenet");
    assert_eq!(config["protocol"], "paper");
    assert!(data.join("weights/googlenet.pth").is_file());
}

/// Every ImageNet network trains: one step's gradients reach every convolution and batch-norm
/// parameter of the trunk, finite and not all zero. (candle's own pooling has no gradient for
/// the overlapping 3×3 stride-2 windows all of them use.)
#[test]
fn every_imagenet_network_has_gradients_through_its_whole_trunk() {
    use rand::SeedableRng;
    for arch in [
        Architecture::GoogLeNet,
        Architecture::BnInception,
        Architecture::ResNet18,
        Architecture::ResNet50,
    ] {
        let (net, varmap) = network(arch, BnMode::Train, 0.4);
        let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let y = net.forward_train(&x, &mut rng).unwrap();
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let vars = varmap.data().lock().unwrap();
        let mut checked = 0;
        for (name, var) in vars.iter() {
            if name.contains("running_") {
                continue;
            }
            let grad = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{arch:?}: {name} gets no gradient"));
            let values: Vec<f32> = grad.flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                values.iter().all(|v| v.is_finite()),
                "{arch:?}: {name} has a non-finite gradient"
            );
            assert!(
                values.iter().any(|v| *v != 0.0),
                "{arch:?}: {name}'s gradient is all zero"
            );
            checked += 1;
        }
        assert!(checked > 20, "{arch:?}: only {checked} parameters");
    }
}

/// A dataset that is not prepared is reported before any weight file is downloaded.
#[test]
fn a_missing_dataset_is_reported_before_weights_are_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let (server, manifest) = serving_one(dir.path(), "googlenet", "googlenet", "googlenet.pth");
    let output = lifted()
        .args([
            "train",
            "cub200",
            "--quiet",
            "--protocol",
            "paper",
            "--weights-manifest",
        ])
        .arg(&manifest)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("prepare-data cub200") || err.contains("not prepared"),
        "{err}"
    );
    assert!(server.requests_for("/googlenet.pth").is_empty());
    assert!(!dir.path().join("data/weights").exists());
}

/// The built-in manifest: the five published files, each checked by the hash prefix its file
/// name carries, with a licence and a source.
#[test]
fn the_built_in_weights_are_the_published_files() {
    let entries = weights::entries(None).unwrap();
    let names: Vec<(&str, Architecture)> =
        entries.iter().map(|e| (e.name.as_str(), e.arch)).collect();
    assert_eq!(
        names,
        [
            ("googlenet", Architecture::GoogLeNet),
            ("resnet18", Architecture::ResNet18),
            ("resnet50", Architecture::ResNet50),
            ("resnet50-v2", Architecture::ResNet50),
            ("bninception", Architecture::BnInception),
        ]
    );
    for entry in &entries {
        let prefix = entry.file.sha256_prefix.as_deref().unwrap();
        let stem = entry.file.name.trim_end_matches(".pth");
        assert!(stem.ends_with(&format!("-{prefix}")), "{}", entry.file.name);
        assert!(!entry.licence.is_empty() && !entry.file.sources.is_empty());
        assert!(entry.file.sources[0].url.ends_with(&entry.file.name));
    }
    // Every network's default ImageNet weights are listed for it.
    for arch in [
        Architecture::GoogLeNet,
        Architecture::ResNet18,
        Architecture::ResNet50,
        Architecture::BnInception,
    ] {
        let name = lifted::train::config::imagenet_weights(arch).unwrap();
        assert_eq!(weights::entry(name, None).unwrap().arch, arch);
    }
}

/// A weight manifest is checked as strictly as a dataset's: its file names are written under
/// the data dir, and its hash prefixes are all that stands between a download and a run.
#[test]
fn a_weight_manifest_with_a_path_a_short_prefix_or_a_name_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |name: &str, file: &str, check: &str| {
        format!(
            "[[weights]]\nname = \"{name}\"\narch = \"resnet18\"\ntitle = \"t\"\nlicence = \"l\"\n\n\
             [weights.file]\nname = \"{file}\"\n{check}kind = \"pth\"\n\n\
             [[weights.file.sources]]\nurl = \"http://127.0.0.1:9/{file}\"\n\n"
        )
    };
    let good = "sha256_prefix = \"f37072fd\"\n";
    for (text, problem) in [
        (
            entry("r", "../escape.pth", good),
            "must be a plain file name",
        ),
        (
            entry("r", "r.pth", "sha256_prefix = \"\"\n"),
            "sha256_prefix must be 8",
        ),
        (
            entry("r", "r.pth", "sha256_prefix = \"F37072FD\"\n"),
            "lower-case hex",
        ),
        (entry("r", "r.pth", ""), "has no hash"),
        (
            entry("r", "a.pth", good) + &entry("r", "b.pth", good),
            "listed twice",
        ),
    ] {
        let path = write(dir.path(), "weights.toml", text.as_bytes());
        let err = weights::entries(Some(&path)).unwrap_err();
        assert!(
            matches!(err, WeightsError::InvalidManifest { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(problem), "{problem}: {err}");
    }
}
