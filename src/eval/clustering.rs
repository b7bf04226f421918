//! Clustering metrics comparing cluster assignments with classes.
//!
//! - **NMI**: I(Ω; C) / ((H(Ω) + H(C)) / 2), natural logarithms, maximum-likelihood counts; the
//!   same as the original evaluation's 2I/(H(Ω)+H(C)) and scikit-learn's default
//!   (`average_method="arithmetic"`).
//! - **AMI**: (I − E[I]) / ((H(Ω) + H(C)) / 2 − E[I]), with E[I] under the hypergeometric model
//!   (Vinh, Epps and Bailey 2010), as scikit-learn computes it. Equal marginals are grouped, so
//!   the expectation costs (distinct cluster sizes × distinct class sizes × overlap).
//! - **Pairwise F1** (the original evaluation code): over pairs of samples, TP = Σ C(nᵢⱼ, 2),
//!   TP + FP = Σ C(aᵢ, 2), TP + FN = Σ C(bⱼ, 2), F1 = 2PR / (P + R).

use std::collections::BTreeMap;

use serde::Serialize;

/// Clustering metrics of one assignment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClusteringScores {
    /// Normalised mutual information.
    pub nmi: f64,
    /// Adjusted mutual information.
    pub ami: f64,
    /// Pairwise F1.
    pub f1: f64,
}

/// Scores a clustering against the classes.
pub fn scores(clusters: &[u32], labels: &[i64]) -> ClusteringScores {
    let n = labels.len() as f64;
    // Ordered maps: every sum below runs in the same order on every run, so the results are
    // the same to the last digit.
    let mut joint: BTreeMap<(u32, i64), usize> = BTreeMap::new();
    let mut a: BTreeMap<u32, usize> = BTreeMap::new();
    let mut b: BTreeMap<i64, usize> = BTreeMap::new();
    for (&c, &l) in clusters.iter().zip(labels) {
        *joint.entry((c, l)).or_insert(0) += 1;
        *a.entry(c).or_insert(0) += 1;
        *b.entry(l).or_insert(0) += 1;
    }
    let entropy = |m: &mut dyn Iterator<Item = usize>| -> f64 {
        m.map(|x| x as f64 / n).map(|p| -p * p.ln()).sum()
    };
    let h_a = entropy(&mut a.values().copied());
    let h_b = entropy(&mut b.values().copied());
    let mi: f64 = joint
        .iter()
        .map(|(&(c, l), &nij)| {
            let nij = nij as f64;
            nij / n * (n * nij / (a[&c] as f64 * b[&l] as f64)).ln()
        })
        .sum::<f64>()
        .max(0.0);
    let mean_h = (h_a + h_b) / 2.0;
    let nmi = if mean_h == 0.0 { 1.0 } else { mi / mean_h };
    let emi = expected_mutual_information(
        &a.values().copied().collect::<Vec<_>>(),
        &b.values().copied().collect::<Vec<_>>(),
        labels.len(),
    );
    let ami = if (mean_h - emi).abs() < f64::EPSILON {
        1.0
    } else {
        (mi - emi) / (mean_h - emi)
    };
    let pairs = |x: usize| (x * x.saturating_sub(1) / 2) as f64;
    let tp: f64 = joint.values().map(|&x| pairs(x)).sum();
    let tp_fp: f64 = a.values().map(|&x| pairs(x)).sum();
    let tp_fn: f64 = b.values().map(|&x| pairs(x)).sum();
    let precision = if tp_fp > 0.0 { tp / tp_fp } else { 0.0 };
    let recall = if tp_fn > 0.0 { tp / tp_fn } else { 0.0 };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    ClusteringScores { nmi, ami, f1 }
}

/// E[I(U; V)] for marginals `a` (cluster sizes) and `b` (class sizes) of `n` samples.
fn expected_mutual_information(a: &[usize], b: &[usize], n: usize) -> f64 {
    let group = |m: &[usize]| -> BTreeMap<usize, usize> {
        let mut g = BTreeMap::new();
        for &x in m {
            *g.entry(x).or_insert(0) += 1;
        }
        g
    };
    let (ga, gb) = (group(a), group(b));
    // ln k! for k = 0..=n.
    let mut log_fact = vec![0f64; n + 1];
    for k in 1..=n {
        log_fact[k] = log_fact[k - 1] + (k as f64).ln();
    }
    let nf = n as f64;
    let mut emi = 0.0;
    for (&ai, &count_a) in &ga {
        for (&bj, &count_b) in &gb {
            let start = (ai + bj).saturating_sub(n).max(1);
            let mut term = 0.0;
            for nij in start..=ai.min(bj) {
                let log_p = log_fact[ai] + log_fact[bj] + log_fact[n - ai] + log_fact[n - bj]
                    - log_fact[n]
                    - log_fact[nij]
                    - log_fact[ai - nij]
                    - log_fact[bj - nij]
                    - log_fact[n - ai - bj + nij];
                let x = nij as f64;
                term += x / nf * (nf * x / (ai as f64 * bj as f64)).ln() * log_p.exp();
            }
            emi += term * (count_a * count_b) as f64;
        }
    }
    emi
}
