//! Seeded initial weights. candle draws a new variable's initial value from an unseeded
//! generator on the CPU, so two runs with the same settings would start from different networks
//! and a resumed run could not be checked against an uninterrupted one. [`SeededVars`] is a
//! variable store for [`VarBuilder`] that draws each new variable from its own stream, keyed by
//! (seed, variable name), with the distribution candle's [`Init`] asks for.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::RngExt;
use rand_distr::{Distribution, Normal};

use crate::rng::{Purpose, stream_named};

/// New variables go into `varmap`, drawn from streams keyed by `seed` and their names.
#[derive(Clone)]
pub struct SeededVars {
    varmap: VarMap,
    seed: u64,
}

impl SeededVars {
    /// A [`VarBuilder`] whose new variables are seeded and stored in `varmap`.
    pub fn builder<'a>(
        varmap: &VarMap,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> VarBuilder<'a> {
        VarBuilder::from_backend(
            Box::new(SeededVars {
                varmap: varmap.clone(),
                seed,
            }),
            dtype,
            device.clone(),
        )
    }
}

/// The initial value of variable `name` of `shape` per `init`, in f32 on the CPU.
///
/// # Errors
/// candle's error when a normal distribution's standard deviation is not finite.
pub fn initial_value(seed: u64, name: &str, shape: &Shape, init: Init) -> Result<Tensor> {
    let count = shape.elem_count();
    let mut rng = stream_named(seed, Purpose::Init, name);
    let normal = |mean: f64, sd: f64, rng: &mut rand_chacha::ChaCha8Rng| -> Result<Vec<f32>> {
        let dist =
            Normal::new(mean, sd).map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
        Ok((0..count).map(|_| dist.sample(rng) as f32).collect())
    };
    let uniform = |lo: f64, up: f64, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f32> {
        (0..count)
            .map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32)
            .collect()
    };
    let values = match init {
        Init::Const(v) => vec![v as f32; count],
        Init::Uniform { lo, up } => uniform(lo, up, &mut rng),
        Init::Randn { mean, stdev } => normal(mean, stdev, &mut rng)?,
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    uniform(-3f64.sqrt() * std, 3f64.sqrt() * std, &mut rng)
                }
                NormalOrUniform::Normal => normal(0.0, std, &mut rng)?,
            }
        }
    };
    Tensor::from_vec(values, shape.clone(), &Device::Cpu)
}

impl SimpleBackend for SeededVars {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let mut vars = self
            .varmap
            .data()
            .lock()
            .expect("the variable map is not poisoned");
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("shape mismatch on {name}: {shape:?} <> {:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let value = initial_value(self.seed, name, &shape, init)?
            .to_dtype(dtype)?
            .to_device(device)?;
        let var = Var::from_tensor(&value)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _device: &Device) -> Result<Tensor> {
        candle_core::bail!(
            "{name}: a seeded variable store needs the variable's shape and initialiser"
        )
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .expect("the variable map is not poisoned")
            .contains_key(name)
    }
}
