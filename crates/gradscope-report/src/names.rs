//! The stable names of a network's tensors, as records, dumps, weights files and messages spell
//! them, written once: a parameter is `layers.{l}.weight` or `layers.{l}.bias` (the names Burn's
//! module visitor gives an `Mlp`'s parameters, which the model crate's stack repeats), a
//! tensor of the pass `z.layers.{l}`, `a.layers.{l}` or `delta.layers.{l}`, and an optimiser's
//! state `{state}.layers.{l}.{weight,bias}`.

/// Which parameter of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// The kernel W_l.
    Weight,
    /// The bias b_l.
    Bias,
}

impl Param {
    /// `weight` or `bias`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weight => "weight",
            Self::Bias => "bias",
        }
    }
}

/// Layer `l`'s parameter: `layers.{l}.weight` or `layers.{l}.bias`.
pub fn param(l: usize, which: Param) -> String {
    format!("layers.{l}.{}", which.name())
}

/// Layer `l`'s tensor of the pass, `{tensor}.layers.{l}`: `z` (pre-activation), `a`
/// (activation) or `delta` (δ_l = ∂loss/∂z_l).
pub fn pass_tensor(tensor: &str, l: usize) -> String {
    format!("{tensor}.layers.{l}")
}

/// δ_l's name, `delta.layers.{l}`.
pub fn delta(l: usize) -> String {
    pass_tensor("delta", l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spelled_as_records_and_dumps_hold_them() {
        assert_eq!(param(3, Param::Weight), "layers.3.weight");
        assert_eq!(param(0, Param::Bias), "layers.0.bias");
        assert_eq!(pass_tensor("z", 2), "z.layers.2");
        assert_eq!(delta(1), "delta.layers.1");
    }
}
