//! Walking an `Mlp`'s parameters by their stable names (`layers.{i}.weight`, `layers.{i}.bias`)
//! with Burn's `ModuleVisitor`, to read their values or their gradients.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

use crate::host::HostTensor;

/// A tensor and the dotted path of the parameter it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Dotted path, e.g. `layers.0.weight`.
    pub name: String,
    /// The values.
    pub tensor: HostTensor,
}

struct Collector<'a> {
    path: Vec<String>,
    grads: Option<&'a mut Gradients>,
    out: Vec<NamedTensor>,
    missing: Vec<String>,
}

impl ModuleVisitor for Collector<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.join(".");
        let value: Tensor<D> = param.val();
        let tensor = match self.grads.as_deref_mut() {
            None => Some(HostTensor::from_tensor(value)),
            Some(grads) => value.grad_remove(grads).map(HostTensor::from_tensor),
        };
        match tensor {
            Some(tensor) => self.out.push(NamedTensor { name, tensor }),
            None => self.missing.push(name),
        }
    }
}

/// The layer a parameter named `layers.{i}.weight` or `layers.{i}.bias` belongs to (`None`
/// for any other name).
pub fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("layers.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Every parameter's value, in module order.
pub fn collect_parameters<M: Module>(module: &M) -> Vec<NamedTensor> {
    let mut c = Collector {
        path: Vec::new(),
        grads: None,
        out: Vec::new(),
        missing: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// Every parameter's gradient, in module order. `Err` lists the parameters that have none
/// (not part of the loss's graph).
///
/// The gradients are removed from `grads`: a tensor held only once is read back without a
/// copy, where ndarray reads a shared one element by element (many times slower).
pub fn collect_gradients<M: Module>(
    module: &M,
    grads: &mut Gradients,
) -> Result<Vec<NamedTensor>, Vec<String>> {
    let mut c = Collector {
        path: Vec::new(),
        grads: Some(grads),
        out: Vec::new(),
        missing: Vec::new(),
    };
    module.visit(&mut c);
    if c.missing.is_empty() {
        Ok(c.out)
    } else {
        Err(c.missing)
    }
}

#[cfg(test)]
mod tests {
    use super::layer_of;

    #[test]
    fn a_parameters_layer_is_read_from_its_name() {
        assert_eq!(layer_of("layers.0.weight"), Some(0));
        assert_eq!(layer_of("layers.12.bias"), Some(12));
        assert_eq!(layer_of("layers.x.weight"), None);
        assert_eq!(layer_of("0.weight"), None);
    }
}
