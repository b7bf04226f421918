//! Optimisers with parameter groups: SGD with momentum and weight decay (PyTorch's rule, which
//! candle-nn's SGD lacks), and AdamW (decoupled weight decay, PyTorch's rule), with learning-rate
//! schedules. Their state (momentum buffers, moments, step count) can be saved and restored, so a
//! resumed run continues exactly.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum: `b = μ·b + (g + λ·w)`, `w −= lr·b` (the first step sets `b = g + λ·w`).
    Sgd,
    /// AdamW: `w −= lr·λ·w`, then Adam with bias correction.
    AdamW,
}

/// How the learning rate changes over the steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiplied by `gamma` every `every` steps (Caffe's "step" policy).
    Step {
        /// Steps between decays.
        every: u64,
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine from the base rate to 0 over `total` steps.
    Cosine {
        /// Steps of the whole run.
        total: u64,
    },
}

impl Schedule {
    /// The factor applied to the base rate at `step` (0-based).
    pub fn factor(&self, step: u64) -> f64 {
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Step { every, gamma } => gamma.powi((step / every.max(1)) as i32),
            Schedule::Cosine { total } => {
                0.5 * (1.0
                    + (std::f64::consts::PI * (step.min(total) as f64) / total.max(1) as f64).cos())
            }
        }
    }
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    /// Update rule.
    pub kind: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum μ.
    pub momentum: f64,
    /// Weight decay λ.
    pub weight_decay: f64,
    /// Learning-rate multiplier of the embedding head (the paper: 10).
    pub head_lr_mult: f64,
    /// AdamW β₁, β₂.
    pub betas: (f64, f64),
    /// AdamW ε.
    pub eps: f64,
    /// Schedule.
    pub schedule: Schedule,
}

/// A group of variables sharing a learning-rate multiplier.
struct Group {
    vars: Vec<(String, Var)>,
    lr_mult: f64,
}

/// An optimiser over named parameter groups.
pub struct Optimizer {
    config: OptimConfig,
    groups: Vec<Group>,
    /// Per variable: SGD momentum buffer, or AdamW (m, v).
    state: HashMap<String, Vec<Tensor>>,
    step: u64,
}

impl Optimizer {
    /// An optimiser over `groups` of (name, variable) with their learning-rate multipliers.
    pub fn new(config: OptimConfig, groups: Vec<(Vec<(String, Var)>, f64)>) -> Optimizer {
        Optimizer {
            config,
            groups: groups
                .into_iter()
                .map(|(vars, lr_mult)| Group { vars, lr_mult })
                .collect(),
            state: HashMap::new(),
            step: 0,
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The base learning rate of the next step.
    pub fn learning_rate(&self) -> f64 {
        self.config.lr * self.config.schedule.factor(self.step)
    }

    /// Applies one update from `grads`; variables without a gradient are left alone.
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when a gradient's shape or device
    /// differs from its variable's.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let base = self.learning_rate();
        let c = self.config;
        let t = (self.step + 1) as i32;
        for group in &self.groups {
            let lr = base * group.lr_mult;
            for (name, var) in &group.vars {
                let Some(g) = grads.get(var.as_tensor()) else {
                    continue;
                };
                let w = var.as_tensor();
                match c.kind {
                    OptimizerKind::Sgd => {
                        let g = if c.weight_decay != 0.0 {
                            (g + (w * c.weight_decay)?)?
                        } else {
                            g.clone()
                        };
                        let buffer = match self.state.get(name).and_then(|s| s.first()) {
                            Some(b) if c.momentum != 0.0 => ((b * c.momentum)? + &g)?,
                            _ => g,
                        };
                        var.set(&(w - (&buffer * lr)?)?)?;
                        self.state.insert(name.clone(), vec![buffer]);
                    }
                    OptimizerKind::AdamW => {
                        let (b1, b2) = c.betas;
                        let w = if c.weight_decay != 0.0 {
                            (w * (1.0 - lr * c.weight_decay))?
                        } else {
                            w.clone()
                        };
                        let (m, v) = match self.state.get(name).map(Vec::as_slice) {
                            Some([m, v]) => (m.clone(), v.clone()),
                            _ => (g.zeros_like()?, g.zeros_like()?),
                        };
                        let m = ((m * b1)? + (g * (1.0 - b1))?)?;
                        let v = ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                        let m_hat = (&m / (1.0 - b1.powi(t)))?;
                        let v_hat = (&v / (1.0 - b2.powi(t)))?;
                        let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
                        var.set(&(w - (update * lr)?)?)?;
                        self.state.insert(name.clone(), vec![m, v]);
                    }
                }
            }
        }
        self.step += 1;
        Ok(())
    }

    /// The state as named tensors (for a safetensors file) and the step count.
    pub fn state(&self) -> (HashMap<String, Tensor>, u64) {
        let mut out = HashMap::new();
        for (name, tensors) in &self.state {
            for (i, t) in tensors.iter().enumerate() {
                out.insert(format!("{name}#{i}"), t.clone());
            }
        }
        (out, self.step)
    }

    /// Restores [`Optimizer::state`].
    ///
    /// # Errors
    /// candle's error with a message when a key is not `name#index` with a numeric index.
    pub fn restore(&mut self, tensors: HashMap<String, Tensor>, step: u64) -> Result<()> {
        let mut state: HashMap<String, Vec<(usize, Tensor)>> = HashMap::new();
        for (key, t) in tensors {
            let Some((name, i)) = key.rsplit_once('#') else {
                candle_core::bail!("optimizer state key `{key}` is not `name#index`");
            };
            let i: usize = i
                .parse()
                .map_err(|_| candle_core::Error::Msg(format!("bad optimizer state key `{key}`")))?;
            state.entry(name.to_string()).or_default().push((i, t));
        }
        self.state = state
            .into_iter()
            .map(|(name, mut parts)| {
                parts.sort_by_key(|(i, _)| *i);
                (name, parts.into_iter().map(|(_, t)| t).collect())
            })
            .collect();
        self.step = step;
        Ok(())
    }
}
