//! The losses against golden values and gradients from `tools/golden/losses.py` (a NumPy
//! transcription of the original Caffe layer, which agrees with pytorch-metric-learning's
//! LiftedStructureLoss to 1e-9; PML's GeneralizedLiftedStructureLoss; the paper's contrastive
//! and triplet equations), against finite differences, and on hostile batches.
//!
//! Tolerance: values and gradients agree with the float64 references to 1e-9 relative in f64,
//! and to 2e-4 relative (1e-5 absolute) in f32.

use candle_core::{DType, Device, Tensor, Var};
use lifted::loss::{LossError, LossKind, lifted_structured_loss};

use crate::support::images::fixtures;

struct Case {
    name: String,
    margin: f64,
    x: Vec<Vec<f64>>,
    labels: Vec<i64>,
    golden: serde_json::Value,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("losses/golden.json")).unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            margin: c["margin"].as_f64().unwrap(),
            x: c["embeddings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect()
                })
                .collect(),
            labels: c["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect(),
            golden: c,
        })
        .collect()
}

fn value_and_grad(kind: LossKind, case: &Case, dtype: DType) -> (f64, Vec<f64>) {
    let (n, d) = (case.x.len(), case.x[0].len());
    let flat: Vec<f64> = case.x.iter().flatten().copied().collect();
    let x = Var::from_tensor(
        &Tensor::from_vec(flat, (n, d), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap(),
    )
    .unwrap();
    let labels = Tensor::new(case.labels.as_slice(), &Device::Cpu).unwrap();
    let loss = kind.compute(x.as_tensor(), &labels, case.margin).unwrap();
    let grads = loss.backward().unwrap();
    let grad = grads
        .get(x.as_tensor())
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    (
        loss.to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap(),
        grad,
    )
}

fn check(kind: LossKind, key: &str) {
    for case in cases() {
        let expected_value = case.golden[key]["value"].as_f64().unwrap();
        let expected_grad: Vec<f64> = case.golden[key]["grad"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        for (dtype, rel, abs) in [(DType::F64, 1e-9, 1e-12), (DType::F32, 2e-4, 1e-5)] {
            let (value, grad) = value_and_grad(kind, &case, dtype);
            assert!(
                (value - expected_value).abs() <= rel * expected_value.abs() + abs,
                "{key} {} {dtype:?}: {value} vs {expected_value}",
                case.name
            );
            let scale = expected_grad.iter().fold(0f64, |m, g| m.max(g.abs()));
            for (i, (g, e)) in grad.iter().zip(&expected_grad).enumerate() {
                assert!(
                    (g - e).abs() <= rel * scale + abs,
                    "{key} {} {dtype:?}: gradient {i}: {g} vs {e}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn lifted_matches_the_caffe_layer_and_pml() {
    check(LossKind::Lifted, "lifted");
}

#[test]
fn generalized_lifted_matches_pml() {
    check(LossKind::GeneralizedLifted, "generalized_lifted");
}

#[test]
fn contrastive_matches_the_papers_equation() {
    check(LossKind::Contrastive, "contrastive");
}

#[test]
fn triplet_matches_the_papers_equation() {
    check(LossKind::Triplet, "triplet");
}

#[test]
fn gradients_match_finite_differences() {
    // Central differences in f64 on the second case, for every loss.
    let case = &cases()[1];
    for kind in [
        LossKind::Lifted,
        LossKind::GeneralizedLifted,
        LossKind::Contrastive,
        LossKind::Triplet,
    ] {
        let (_, grad) = value_and_grad(kind, case, DType::F64);
        let (n, d) = (case.x.len(), case.x[0].len());
        let labels = Tensor::new(case.labels.as_slice(), &Device::Cpu).unwrap();
        let at = |x: &[f64]| {
            let t = Tensor::from_slice(x, (n, d), &Device::Cpu).unwrap();
            kind.compute(&t, &labels, case.margin)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let base: Vec<f64> = case.x.iter().flatten().copied().collect();
        let h = 1e-6;
        for i in (0..n * d).step_by(5) {
            let (mut plus, mut minus) = (base.clone(), base.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (at(&plus) - at(&minus)) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() <= 1e-5 * (1.0 + numeric.abs()),
                "{kind:?} coordinate {i}: {numeric} vs {}",
                grad[i]
            );
        }
    }
}

#[test]
fn identical_embeddings_give_finite_values_and_gradients() {
    // Two samples of a class on the same point, and a negative on the same point too.
    let x = Var::new(
        &[[0.5f32, -0.25], [0.5, -0.25], [0.5, -0.25], [1.0, 1.0]],
        &Device::Cpu,
    )
    .unwrap();
    let labels = Tensor::new(&[0u32, 0, 1, 1], &Device::Cpu).unwrap();
    for kind in [
        LossKind::Lifted,
        LossKind::GeneralizedLifted,
        LossKind::Contrastive,
        LossKind::Triplet,
    ] {
        let loss = kind.compute(x.as_tensor(), &labels, 1.0).unwrap();
        assert!(loss.to_scalar::<f32>().unwrap().is_finite(), "{kind:?}");
        let grad = loss
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(grad.iter().all(|g| g.is_finite()), "{kind:?}: {grad:?}");
    }
}

#[test]
fn batches_without_positives_or_negatives_and_wrong_shapes_are_errors() {
    let x = Tensor::new(&[[0f32, 1.0], [1.0, 0.0], [2.0, 2.0]], &Device::Cpu).unwrap();
    let err = lifted_structured_loss(&x, &Tensor::new(&[0u32, 1, 2], &Device::Cpu).unwrap(), 1.0)
        .unwrap_err();
    assert!(matches!(err, LossError::NoPositivePair(3)), "{err:?}");
    assert!(err.to_string().contains("K ≥ 2"));
    let err = lifted_structured_loss(&x, &Tensor::new(&[4u32, 4, 4], &Device::Cpu).unwrap(), 1.0)
        .unwrap_err();
    assert!(matches!(err, LossError::NoNegativePair(3)), "{err:?}");
    let err = lifted_structured_loss(&x, &Tensor::new(&[0u32, 0], &Device::Cpu).unwrap(), 1.0)
        .unwrap_err();
    assert!(
        matches!(&err, LossError::LabelsShape { expected: 3, got } if got == &[2]),
        "{err:?}"
    );
    let err = lifted_structured_loss(
        &x.flatten_all().unwrap(),
        &Tensor::new(&[0u32, 0], &Device::Cpu).unwrap(),
        1.0,
    )
    .unwrap_err();
    assert!(matches!(err, LossError::EmbeddingsShape(_)), "{err:?}");
}

#[test]
fn a_batch_where_every_hinge_is_inactive_has_zero_loss_and_gradient() {
    // Two tight classes far apart: J̃ = log(Σ exp(1 − D)) + D_ij < 0 everywhere.
    let x = Var::new(
        &[[0f64, 0.0], [0.0, 0.01], [100.0, 0.0], [100.0, 0.01]],
        &Device::Cpu,
    )
    .unwrap();
    let labels = Tensor::new(&[1u8, 1, 2, 2], &Device::Cpu).unwrap();
    let loss = lifted_structured_loss(x.as_tensor(), &labels, 1.0).unwrap();
    assert_eq!(loss.to_scalar::<f64>().unwrap(), 0.0);
    let grad = loss
        .backward()
        .unwrap()
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    assert!(grad.iter().all(|&g| g == 0.0), "{grad:?}");
}
