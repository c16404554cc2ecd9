//! The render crate's one integration-test binary: renderings of whole reports, read back as
//! a reader or a tool would.

mod caveats;
mod health;
mod nonfinite;
mod pictures;
mod sweep_pictures;
mod tables;
