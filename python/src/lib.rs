//! `ebm_gpu._native`: the engine for Python. Three things cross the boundary:
//! - [`run`]: one `ebm` command, in this process, with the interpreter's lock released — every
//!   job of the CLI (sample, train, eval, score, rbm, ...) with the CLI's exact results; the
//!   Python layer passes arrays in and out as .npy files in a temporary folder.
//! - [`PyEnergy`]: an energy in memory (any spec, or a network from named tensors such as a
//!   PyTorch state_dict) evaluated on NumPy arrays.
//! - [`PyShardTrainer`] and [`join_shares`]: data-parallel training steps for Ray workers.

//!
//! It binds the engine's public API only (`prelude`, `cli`, `data_parallel`).
use ebm_gpu::data_parallel::{ShardTrainer, ShareSums, StepShare};
use ebm_gpu::prelude::{Architecture, Energy, Network, resolve_energy};
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::HashMap;
use std::path::PathBuf;

create_exception!(_native, EbmError, PyException, "An error from the engine; the message names the input at fault.");

fn engine_error(e: impl Into<anyhow::Error>) -> PyErr {
    // `{:#}` keeps anyhow's context chain ("loading --data x.npy: ...").
    EbmError::new_err(format!("{:#}", e.into()))
}

/// Runs one `ebm` command (the arguments after `ebm`, as on the command line) in this
/// process with the interpreter's lock released; progress on stderr only with `progress`.
/// Raises EbmError with the command's message.
#[pyfunction]
#[pyo3(signature = (args, progress = false))]
fn run(py: Python<'_>, args: Vec<String>, progress: bool) -> PyResult<()> {
    ebm_gpu::cli::progress::set_enabled(progress);
    let argv: Vec<String> = std::iter::once("ebm".to_string()).chain(args).collect();
    py.detach(|| ebm_gpu::cli::run(argv)).map_err(engine_error)
}

/// Rows of `x`, checked: float32, C order, width `dim`, finite.
fn rows(x: &PyReadonlyArray2<'_, f32>, dim: usize, what: &str) -> PyResult<Vec<f32>> {
    let shape = x.shape();
    if shape[1] != dim {
        return Err(PyValueError::new_err(format!(
            "{what} has shape {shape:?}; the energy takes rows of {dim} values, shape [n, {dim}]"
        )));
    }
    let values = x
        .as_slice()
        .map_err(|_| PyValueError::new_err(format!("{what} must be C-contiguous (np.ascontiguousarray)")))?;
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "{what} holds a non-finite value at row {}, column {}",
            k / dim,
            k % dim
        )));
    }
    Ok(values.to_vec())
}

/// Energies [n] and gradients [n, dim].
type EnergiesGradients<'py> = (Bound<'py, PyArray1<f32>>, Bound<'py, PyArray2<f32>>);

/// An energy E(x) in memory: a spec (preset, JSON, `net:FILE`, `rbm:FILE`, ...) or a network
/// built from named tensors.
#[pyclass(name = "Energy", module = "ebm_gpu._native", frozen)]
struct PyEnergy {
    energy: Energy,
    /// The spec it was resolved from (None: built from tensors).
    spec: Option<String>,
}

#[pymethods]
impl PyEnergy {
    /// The energy an `--energy` argument names.
    #[staticmethod]
    fn resolve(spec: &str) -> PyResult<Self> {
        Ok(Self { energy: resolve_energy(spec).map_err(engine_error)?, spec: Some(spec.to_string()) })
    }

    /// A network of architecture `arch` (the engine's text form, e.g. `2/64/silu/1/head:f`)
    /// from float32 tensors named as nn.Sequential's state_dict (`0.weight`, `0.bias`, ...).
    #[staticmethod]
    fn from_tensors(arch: &str, tensors: HashMap<String, PyReadonlyArrayDyn<'_, f32>>) -> PyResult<Self> {
        let arch = Architecture::parse(arch).map_err(engine_error)?;
        let mut named = Vec::with_capacity(tensors.len());
        for (name, array) in tensors {
            let values = array
                .as_slice()
                .map_err(|_| PyValueError::new_err(format!("tensor {name:?} must be C-contiguous float32")))?
                .to_vec();
            named.push((name, array.shape().to_vec(), values));
        }
        let net = Network::from_tensors(&arch, named).map_err(engine_error)?;
        Ok(Self { energy: Energy::from_network(net), spec: None })
    }

    /// The spec the energy was resolved from; None for a network built from tensors.
    #[getter]
    fn spec(&self) -> Option<String> {
        self.spec.clone()
    }

    /// Input width.
    #[getter]
    fn dim(&self) -> usize {
        self.energy.dim()
    }

    /// The kind of energy (gaussian_mixture, net, rbm, ...).
    #[getter]
    fn kind(&self) -> &'static str {
        self.energy.kind()
    }

    /// A network's architecture in the engine's text form; None for other energies.
    #[getter]
    fn arch(&self) -> Option<String> {
        self.energy.architecture()
    }

    /// Energies [n] and gradients dE/dx [n, dim] of float32 rows x [n, dim] (CPU executor).
    fn energy_grad<'py>(&self, py: Python<'py>, x: PyReadonlyArray2<'py, f32>) -> PyResult<EnergiesGradients<'py>> {
        let dim = self.energy.dim();
        let xs = rows(&x, dim, "x")?;
        let n = xs.len() / dim;
        let (es, gs) = py.detach(|| {
            let (mut gs, mut es) = (vec![0.0; xs.len()], vec![0.0; n]);
            self.energy.energy_grad_batch(&xs, &mut gs, &mut es);
            (es, gs)
        });
        let gs = Array2::from_shape_vec((n, dim), gs).expect("n x dim values");
        Ok((es.into_pyarray(py), gs.into_pyarray(py)))
    }

    /// Writes a network energy as a safetensors file that `net:PATH` loads.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.energy.save_network(&path).map_err(engine_error)
    }
}

/// One data-parallel worker: the run of a run dir (config, checkpointed state, data) on the
/// CPU executor, computing shares of each step and finishing steps from joined shares.
#[pyclass(name = "ShardTrainer", module = "ebm_gpu._native")]
struct PyShardTrainer(ShardTrainer);

/// A share as it crosses processes: (first row, end row, gradient, negatives, metric sums).
type ShareTuple<'py> = (usize, usize, PyReadonlyArray1<'py, f32>, PyReadonlyArray1<'py, f32>, [f32; 8]);
type ShareOut<'py> = (usize, usize, Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>, [f32; 8]);

fn share_in(t: ShareTuple<'_>) -> PyResult<StepShare> {
    let slice = |a: &PyReadonlyArray1<'_, f32>| {
        a.as_slice()
            .map(<[f32]>::to_vec)
            .map_err(|_| PyValueError::new_err("share arrays must be C-contiguous float32"))
    };
    Ok(StepShare { rows: t.0..t.1, grad: slice(&t.2)?, negatives: slice(&t.3)?, sums: ShareSums::from_array(t.4) })
}

fn share_out(py: Python<'_>, s: StepShare) -> ShareOut<'_> {
    (s.rows.start, s.rows.end, s.grad.into_pyarray(py), s.negatives.into_pyarray(py), s.sums.to_array())
}

/// Shares of consecutive batch rows joined in the order given (every worker joining the same
/// list gets the same bits).
#[pyfunction]
fn join_shares<'py>(py: Python<'py>, shares: Vec<ShareTuple<'py>>) -> PyResult<ShareOut<'py>> {
    let shares = shares.into_iter().map(share_in).collect::<PyResult<Vec<_>>>()?;
    Ok(share_out(py, StepShare::join(shares).map_err(engine_error)?))
}

#[pymethods]
impl PyShardTrainer {
    /// Opens the run in `run_dir` (made by `ebm train --setup-only`).
    #[new]
    fn new(py: Python<'_>, run_dir: PathBuf) -> PyResult<Self> {
        Ok(Self(py.detach(|| ShardTrainer::open(&run_dir)).map_err(engine_error)?))
    }

    /// Steps done.
    #[getter]
    fn step(&mut self) -> PyResult<u32> {
        self.0.step().map_err(engine_error)
    }

    /// The step's batch size.
    #[getter]
    fn batch(&self) -> usize {
        self.0.batch()
    }

    /// This worker's share of the next step: batch rows first..end.
    fn share<'py>(&self, py: Python<'py>, first: usize, end: usize) -> PyResult<ShareOut<'py>> {
        let share = py.detach(|| self.0.share(first..end)).map_err(engine_error)?;
        Ok(share_out(py, share))
    }

    /// Finishes the step with the joined share of the whole batch; returns its metrics.
    fn finish<'py>(&mut self, py: Python<'py>, share: ShareTuple<'py>) -> PyResult<Bound<'py, PyDict>> {
        let share = share_in(share)?;
        let m = py.detach(|| self.0.finish(share)).map_err(engine_error)?;
        let d = PyDict::new(py);
        for (k, v) in [
            ("loss", m.loss),
            ("e_pos", m.e_pos),
            ("e_neg", m.e_neg),
            ("gap", m.gap()),
            ("grad_norm", m.grad_norm),
            ("log_z", m.log_z),
            ("reset_fraction", m.reset_fraction),
            ("neg_radius", m.neg_radius),
            ("cross_entropy", m.cross_entropy),
        ] {
            d.set_item(k, v)?;
        }
        d.set_item("step", m.step)?;
        Ok(d)
    }

    /// The packed parameters (then log Z).
    fn params<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        Ok(self.0.params().map_err(engine_error)?.into_pyarray(py))
    }

    /// Writes the steps finished since the last call to the run dir: metrics.csv rows, a
    /// train.log line and the checkpoint.
    fn record(&mut self, run_dir: PathBuf, wall_seconds: f64, how: &str) -> PyResult<()> {
        self.0.record(&run_dir, wall_seconds, how).map_err(engine_error)
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EbmError", m.py().get_type::<EbmError>())?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(join_shares, m)?)?;
    m.add_class::<PyEnergy>()?;
    m.add_class::<PyShardTrainer>()?;
    Ok(())
}
