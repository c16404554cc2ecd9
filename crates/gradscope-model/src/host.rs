//! `HostTensor`: a dense row-major f32 tensor on the host, the exchange format between the
//! seeded generators, Burn devices, statistics and files.

use burn::tensor::{Device, Tensor, TensorData};

/// A dense, row-major f32 tensor held in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
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
        Self { shape, data }
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

    /// Read a Burn tensor back to the host (waits for the device).
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_else(|e| panic!("a float tensor reads back as f32: {e:?}"));
        Self::new(shape, values)
    }
}
