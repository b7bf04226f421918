//! The records of a training run's `log.jsonl`, one JSON object per line: written by the
//! trainer, read back by `lifted plot`. This is their one definition.

use serde::{Deserialize, Serialize};

use crate::eval::EvalReport;

/// One line of `log.jsonl`, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LogRecord {
    /// One optimiser step.
    Step {
        /// The epoch (0-based).
        epoch: u64,
        /// The step within the epoch (0-based).
        step: u64,
        /// Steps done so far in the run, this one included.
        global_step: u64,
        /// The batch's loss.
        loss: f64,
        /// The learning rate of the step.
        lr: f64,
        /// Training images per second since the run (or its resumption) started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        images_per_s: Option<f64>,
    },
    /// The end of an epoch.
    Epoch {
        /// The epoch (0-based).
        epoch: u64,
        /// Steps done so far in the run.
        global_step: u64,
        /// The mean loss of the epoch's steps.
        mean_loss: f64,
        /// The epoch's wall time.
        seconds: f64,
    },
    /// An evaluation on the test classes.
    Eval {
        /// Epochs done when it ran.
        epoch: u64,
        /// Steps done when it ran.
        global_step: u64,
        /// The metrics.
        report: EvalReport,
    },
}

impl LogRecord {
    /// Steps done when the record was written.
    pub fn global_step(&self) -> u64 {
        match self {
            LogRecord::Step { global_step, .. }
            | LogRecord::Epoch { global_step, .. }
            | LogRecord::Eval { global_step, .. } => *global_step,
        }
    }
}
