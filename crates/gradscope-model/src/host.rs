//! `HostTensor`: a dense row-major f32 tensor on the host, the exchange format between the
//! seeded generators, Burn devices, statistics and files.

use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData, bf16, f16};

/// A dense, row-major f32 tensor held in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
    /// The same values in f64, where the tensor was read back from an f64 device tensor
    /// (`data` then holds each rounded to f32); `None` for every f32 and 16-bit tensor, whose
    /// values `data` holds exactly.
    pub wide: Option<Vec<f64>>,
}

impl HostTensor {
    /// Wrap `data` with `shape`.
    ///
    /// # Panics
    /// Panics if the element count does not match the shape (a programming error).
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "HostTensor: shape {shape:?} does not match {} values",
            data.len()
        );
        Self {
            shape,
            data,
            wide: None,
        }
    }

    /// The values in f64: exactly as read back from an f64 tensor, else `data` widened (which
    /// is exact).
    pub fn values_f64(&self) -> std::borrow::Cow<'_, [f64]> {
        match &self.wide {
            Some(w) => std::borrow::Cow::Borrowed(w),
            None => std::borrow::Cow::Owned(self.data.iter().map(|&v| f64::from(v)).collect()),
        }
    }

    /// Value `i` in f64: an f64 tensor's own (past f32's range, or below it, it is still
    /// itself), else the f32 widened (exactly).
    pub fn value(&self, i: usize) -> f64 {
        match &self.wide {
            Some(w) => w[i],
            None => f64::from(self.data[i]),
        }
    }

    /// Every value as [`HostTensor::value`] gives it, in order, without a copy of the tensor.
    pub fn values(&self) -> Values<'_> {
        match &self.wide {
            Some(w) => Values::Wide(w.iter()),
            None => Values::Narrow(self.data.iter()),
        }
    }

    /// Whether every value is finite (see [`HostTensor::value`]).
    pub fn all_finite(&self) -> bool {
        self.values().all(f64::is_finite)
    }

    /// How many values are NaN or ±inf (see [`HostTensor::value`]).
    pub fn count_nonfinite(&self) -> usize {
        self.values().filter(|v| !v.is_finite()).count()
    }

    /// Whether a value is ±inf (see [`HostTensor::value`]).
    pub fn has_inf(&self) -> bool {
        self.values().any(f64::is_infinite)
    }

    /// Per row (the slices along the first dimension), whether every value in it is finite.
    pub fn finite_rows(&self) -> Vec<bool> {
        let rows = self.shape.first().copied().unwrap_or(1).max(1);
        let width = (self.len() / rows).max(1);
        (0..self.len().div_ceil(width))
            .map(|r| {
                (r * width..((r + 1) * width).min(self.len())).all(|i| self.value(i).is_finite())
            })
            .collect()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Load this tensor onto `device` as a rank-`D` Burn tensor.
    ///
    /// # Panics
    /// Panics if `D` differs from the rank of `shape` (a programming error).
    pub fn to_device<const D: usize>(&self, device: &Device) -> Tensor<D> {
        assert_eq!(self.shape.len(), D, "HostTensor rank mismatch");
        Tensor::from_data(self.to_data(), device)
    }

    /// The same values as Burn `TensorData`.
    pub fn to_data(&self) -> TensorData {
        TensorData::new(self.data.clone(), self.shape.clone())
    }

    /// Load this tensor onto `device` in `dtype`, each value rounded there on the host (see
    /// [`data_as`]).
    ///
    /// # Panics
    /// Panics if `D` differs from the rank of `shape` (a programming error).
    pub fn to_device_as<const D: usize>(&self, device: &Device, dtype: FloatDType) -> Tensor<D> {
        assert_eq!(self.shape.len(), D, "HostTensor rank mismatch");
        tensor_as(
            data_as(self.data.clone(), self.shape.clone(), dtype),
            device,
            dtype,
        )
    }

    /// Read a Burn tensor back to the host (waits for the device). An f16 or bf16 tensor reads
    /// back exactly (both are subsets of f32); an f64 tensor keeps its values in `wide`, with
    /// `data` their f32 roundings.
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let data = tensor.into_data();
        if data.dtype() == DType::F64 {
            let wide = data
                .try_into_vec::<f64>()
                .unwrap_or_else(|e| panic!("an f64 tensor reads back as f64: {e:?}"));
            let mut t = Self::new(shape, wide.iter().map(|&v| v as f32).collect());
            t.wide = Some(wide);
            return t;
        }
        let values = data
            .try_into_vec_as::<f32>()
            .unwrap_or_else(|e| panic!("a float tensor reads back as f32: {e:?}"));
        Self::new(shape, values)
    }
}

/// `values` with `shape` as `TensorData` of `dtype`, rounded on the host to nearest, ties to
/// even: f32 as it is, f64 widened exactly, f16 and bf16 by `half`'s `from_f32`, which rounds
/// correctly (its `from_f64` does not near ties, and Burn's own casts are the backend's to
/// choose). The same network in every precision is the same f32 draw, rounded once.
pub fn data_as(values: Vec<f32>, shape: Vec<usize>, dtype: FloatDType) -> TensorData {
    match dtype {
        FloatDType::F32 | FloatDType::Flex32 => TensorData::new(values, shape),
        FloatDType::F64 => TensorData::new(values.iter().map(|&v| f64::from(v)).collect(), shape),
        FloatDType::F16 => {
            TensorData::new(values.iter().map(|&v| f16::from_f32(v)).collect(), shape)
        }
        FloatDType::BF16 => {
            TensorData::new(values.iter().map(|&v| bf16::from_f32(v)).collect(), shape)
        }
    }
}

/// `data` (already of `dtype`) as a tensor of `dtype` on `device`: f32 on the device's default
/// float type as before, any other type named, so that Burn converts nothing.
pub fn tensor_as<const D: usize>(
    data: TensorData,
    device: &Device,
    dtype: FloatDType,
) -> Tensor<D> {
    match dtype {
        FloatDType::F32 => Tensor::from_data(data, device),
        other => Tensor::from_data(data, (device, DType::from(other))),
    }
}

/// The values of a [`HostTensor`] as f64s ([`HostTensor::values`]).
#[derive(Debug, Clone)]
pub enum Values<'a> {
    /// An f32 tensor's values, each widened.
    Narrow(std::slice::Iter<'a, f32>),
    /// An f64 tensor's own.
    Wide(std::slice::Iter<'a, f64>),
}

impl Iterator for Values<'_> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        match self {
            Self::Narrow(v) => v.next().map(|&x| f64::from(x)),
            Self::Wide(v) => v.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Narrow(v) => v.size_hint(),
            Self::Wide(v) => v.size_hint(),
        }
    }
}
