//! gradscope's renderers: the schema's records (`gradscope-report`) as a terminal table,
//! markdown for the notebook, CSV, SVG pictures and one self-contained HTML page. Renderers take
//! data and return text: they do no I/O, and they read the schema's types, never JSON by key.
//! No Burn: this crate builds and tests in seconds.

pub mod compare;
pub mod html;
pub mod plot;
pub mod range;
pub mod sweep;
pub mod text;
pub mod train;
