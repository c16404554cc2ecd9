//! Choosing where an experiment runs: the backend names, the wgpu adapter selector, and the
//! one function that turns the user's choice into an autodiff `Device`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock};

use burn::tensor::{Device, DeviceKind, FloatDType};
use gradscope_report::Precision;

/// A Burn backend gradscope can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-ndarray, the CPU backend (default).
    Ndarray,
    /// burn-flex, Burn 0.22's recommended pure-Rust CPU backend.
    Flex,
    /// burn-wgpu: Vulkan/Metal/DX12/OpenGL through wgpu (a GPU, or lavapipe on the CPU).
    Wgpu,
}

impl BackendKind {
    /// Every backend name, as written in configs and on the command line.
    pub const NAMES: &'static [&'static str] = &["ndarray", "flex", "wgpu"];

    /// Parse a backend name.
    pub fn parse(name: &str) -> Result<Self, BackendError> {
        match name {
            "ndarray" => Ok(Self::Ndarray),
            "flex" => Ok(Self::Flex),
            "wgpu" => Ok(Self::Wgpu),
            other => Err(BackendError::Unknown(other.to_string())),
        }
    }

    /// The backend's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
        }
    }
}

/// An opened backend: the autodiff device and, for wgpu, the adapter it landed on.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Which backend.
    pub kind: BackendKind,
    /// The autodiff device tensors are created on.
    pub device: Device,
    /// The same device without autodiff (training's backward pass is written out by hand).
    pub plain: Device,
    /// The adapter's name as the driver reports it (wgpu only), e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub adapter: Option<String>,
}

/// Burn's float type for `precision`.
pub fn dtype(precision: Precision) -> FloatDType {
    match precision {
        Precision::F64 => FloatDType::F64,
        Precision::F32 => FloatDType::F32,
        Precision::Bf16 => FloatDType::BF16,
        Precision::F16 => FloatDType::F16,
    }
}

impl Backend {
    /// The precisions this device computes in, as Burn reports them (`supports_dtype`:
    /// storage and arithmetic), widest first. ndarray: f64, f32; flex: all four; wgpu: f32,
    /// with f16 where the adapter has shaderFloat16 and f64 with shaderFloat64.
    pub fn precisions(&self) -> Vec<Precision> {
        Precision::ALL
            .into_iter()
            .filter(|&p| p == Precision::F32 || self.plain.supports_dtype(dtype(p)))
            .collect()
    }

    /// `Ok` when this device computes in `precision`; else what it has, and where the
    /// precision runs.
    pub fn check_precision(&self, precision: Precision) -> Result<(), BackendError> {
        let has = self.precisions();
        if has.contains(&precision) {
            return Ok(());
        }
        let on = match &self.adapter {
            Some(a) => format!("this wgpu adapter ({a})"),
            None => self.kind.name().to_string(),
        };
        let needs = match precision {
            Precision::Bf16 => "bf16 needs the flex backend (wgpu has no bf16)",
            Precision::F16 => {
                "f16 needs the flex backend, or wgpu on an adapter with shaderFloat16"
            }
            Precision::F64 => "f64 needs ndarray, flex, or wgpu on an adapter with shaderFloat64",
            Precision::F32 => "f32 runs everywhere",
        };
        Err(BackendError::Precision {
            detail: format!(
                "{needs}; {on} has {}",
                has.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

/// The largest relative error an f64 run accepts from an element-wise operation on its device
/// ([`Backend::check_f64_ops`]): about 450 units of f64's roundoff. Rust's and libm's f64
/// functions, the reference, are within an ulp or so; ndarray and flex measured within 2.3e-16
/// on every probe point, while an operation computed in f32 is off by 1e-8 or more, and wgpu's
/// f64 `exp`, `tanh` and `erf` on lavapipe by more than 1 (gfx-rs/wgpu#6087).
pub const F64_OP_TOLERANCE: f64 = 1e-13;

impl Backend {
    /// The largest relative error of `op` on this device in f64 over its probe points, against
    /// the host's f64 (none of them is 0); NaN where the device gave a non-finite value.
    pub fn f64_op_error(&self, op: gradscope_model::ElementOp) -> f64 {
        use burn::tensor::{DType, Tensor, TensorData};
        let points = op.probe_points();
        let n = points.len();
        let x: Tensor<1> = Tensor::from_data(
            TensorData::new(points.clone(), [n]),
            (&self.plain, DType::F64),
        );
        let got = gradscope_model::HostTensor::from_tensor(op.apply(x));
        let got = got.values_f64();
        points
            .iter()
            .zip(got.iter())
            .fold(0.0f64, |worst, (&p, &g)| {
                let exact = op.apply_f64(p);
                let e = (g - exact).abs() / exact.abs();
                if e.is_nan() || worst.is_nan() {
                    f64::NAN
                } else {
                    worst.max(e)
                }
            })
    }

    /// `Ok` when every element-wise operation the `activations` need
    /// ([`gradscope_model::Activation::element_ops`]) is accurate in f64 on this device (within
    /// [`F64_OP_TOLERANCE`] of the host's f64 at each probe point); else which is not, by how
    /// much, and which activations need it. Each operation is probed once.
    pub fn check_f64_activations(
        &self,
        activations: &[gradscope_model::Activation],
    ) -> Result<(), BackendError> {
        let mut ops: Vec<gradscope_model::ElementOp> = Vec::new();
        for a in activations {
            for op in a.element_ops() {
                if !ops.contains(op) {
                    ops.push(*op);
                }
            }
        }
        let bad: Vec<String> = ops
            .iter()
            .filter_map(|&op| {
                let e = self.f64_op_error(op);
                if !(e.is_nan() || e > F64_OP_TOLERANCE) {
                    return None;
                }
                let mut users: Vec<&str> = activations
                    .iter()
                    .filter(|a| a.element_ops().contains(&op))
                    .map(|a| a.name())
                    .collect();
                users.dedup();
                Some(format!(
                    "{} is off by {} relative (needed by {})",
                    op.name(),
                    gradscope_report::floats::fmt_sci64(e, 1),
                    users.join(", ")
                ))
            })
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        let on = match &self.adapter {
            Some(a) => format!("this wgpu adapter ({a})"),
            None => self.kind.name().to_string(),
        };
        Err(BackendError::Precision {
            detail: format!(
                "f64 on {on}: {} (an f64 run needs each within {:.0e} of the host's f64); relu, leaky_relu and identity need none of these",
                bad.join("; "),
                F64_OP_TOLERANCE
            ),
        })
    }
}

/// Why a backend could not be opened. All of these are the user's to fix (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// A backend name that is not one of [`BackendKind::NAMES`].
    #[error("unknown backend `{0}`, expected one of: {names}", names = BackendKind::NAMES.join(", "))]
    Unknown(String),
    /// No wgpu adapter matched, or none could be opened.
    #[error(
        "no usable wgpu adapter: tried adapter `{selector}` on the graphics APIs wgpu offers here: {detail}\n\
         hint: install a Vulkan driver (on Debian: mesa-vulkan-drivers) or use --backend ndarray"
    )]
    NoAdapter {
        /// The selector that was tried.
        selector: String,
        /// What wgpu said.
        detail: String,
    },
    /// `--device` could not be parsed.
    #[error("invalid --device `{0}`: expected default, cpu, discrete:N, integrated:N or virtual:N")]
    BadSelector(String),
    /// `--device` was given for a backend that has no adapters.
    #[error("--device selects a wgpu adapter; backend `{0}` has none")]
    SelectorWithoutWgpu(&'static str),
    /// The experiment's precision is not one this device computes in.
    #[error(
        "precision not available here: {detail}\nhint: choose the backend with --backend, or the precision with --precision"
    )]
    Precision {
        /// What is needed and what the device has.
        detail: String,
    },
}

/// Parse a `--device` selector into Burn's `DeviceKind`.
pub fn parse_selector(s: &str) -> Result<DeviceKind, BackendError> {
    let bad = || BackendError::BadSelector(s.to_string());
    let (kind, index) = match s.split_once(':') {
        Some((k, i)) => (k, Some(i.parse::<usize>().map_err(|_| bad())?)),
        None => (s, None),
    };
    match (kind, index) {
        ("default", None) => Ok(DeviceKind::DefaultDevice),
        ("cpu", None) => Ok(DeviceKind::Cpu),
        ("discrete", i) => Ok(DeviceKind::DiscreteGpu(i.unwrap_or(0))),
        ("integrated", i) => Ok(DeviceKind::IntegratedGpu(i.unwrap_or(0))),
        ("virtual", i) => Ok(DeviceKind::VirtualGpu(i.unwrap_or(0))),
        _ => Err(bad()),
    }
}

/// Open `kind` (with the wgpu adapter `selector`, if given) as an autodiff device.
///
/// wgpu devices are opened once per process and selector and then shared: Burn registers a
/// runtime per adapter and refuses a second initialisation.
pub fn open(kind: BackendKind, selector: Option<&str>) -> Result<Backend, BackendError> {
    match kind {
        BackendKind::Ndarray | BackendKind::Flex => {
            if selector.is_some() {
                return Err(BackendError::SelectorWithoutWgpu(kind.name()));
            }
            Ok(Backend {
                kind,
                device: cpu_device(kind).autodiff(),
                plain: cpu_device(kind),
                adapter: None,
            })
        }
        BackendKind::Wgpu => {
            let selector = selector.unwrap_or("default");
            let device_kind = parse_selector(selector)?;
            let (device, adapter) = open_wgpu(selector, device_kind)?;
            Ok(Backend {
                kind,
                plain: device.clone(),
                device: device.autodiff(),
                adapter,
            })
        }
    }
}

// burn-ndarray is deprecated in 0.22 in favour of flex; it is still offered (and the default)
// because it is the backend the project's anchor figures were measured on.
#[allow(deprecated)]
fn cpu_device(kind: BackendKind) -> Device {
    match kind {
        BackendKind::Flex => Device::flex(),
        _ => Device::ndarray(),
    }
}

type WgpuSlot = Result<(Device, Option<String>), BackendError>;

fn open_wgpu(
    selector: &str,
    device_kind: DeviceKind,
) -> Result<(Device, Option<String>), BackendError> {
    static OPENED: OnceLock<Mutex<Vec<(DeviceKind, WgpuSlot)>>> = OnceLock::new();
    let opened = OPENED.get_or_init(|| Mutex::new(Vec::new()));
    let mut opened = opened.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, slot)) = opened.iter().find(|(k, _)| *k == device_kind) {
        return slot.clone();
    }
    let slot = init_wgpu(selector, device_kind.clone());
    opened.push((device_kind, slot.clone()));
    slot
}

fn init_wgpu(selector: &str, device_kind: DeviceKind) -> WgpuSlot {
    let no_adapter = |detail: String| BackendError::NoAdapter {
        selector: selector.to_string(),
        detail,
    };
    // wgpu and the drivers below it report some failures by panicking; keep those from reaching
    // the user as a panic message and backtrace.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(|| {
        let device = Device::wgpu_options()
            .device_kind(device_kind)
            .init()
            .map_err(|e| e.to_string())?;
        let adapter = device.identity().map(|id| id.name);
        Ok::<_, String>((device, adapter))
    }));
    std::panic::set_hook(previous_hook);
    match result {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(detail)) => Err(no_adapter(detail)),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the wgpu runtime failed to start".to_string());
            Err(no_adapter(detail))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        assert_eq!(parse_selector("default"), Ok(DeviceKind::DefaultDevice));
        assert_eq!(parse_selector("cpu"), Ok(DeviceKind::Cpu));
        assert_eq!(parse_selector("discrete:1"), Ok(DeviceKind::DiscreteGpu(1)));
        assert_eq!(
            parse_selector("integrated"),
            Ok(DeviceKind::IntegratedGpu(0))
        );
        assert!(matches!(
            parse_selector("gpu:x"),
            Err(BackendError::BadSelector(_))
        ));
        assert!(matches!(
            parse_selector("cpu:1"),
            Err(BackendError::BadSelector(_))
        ));
    }

    #[test]
    fn device_flag_is_refused_off_wgpu() {
        let e = open(BackendKind::Ndarray, Some("cpu")).err();
        assert_eq!(e, Some(BackendError::SelectorWithoutWgpu("ndarray")));
    }
}
