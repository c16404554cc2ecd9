//! The checks of an experiment's own fields: its name, description and backend, and its input
//! cases (a distribution or a file each).

use super::*;

impl Checker<'_> {
    /// The description: one line, or none (empty).
    pub(super) fn description(&self, raw: Option<&Spanned<String>>) -> Result<String> {
        let Some(raw) = raw else {
            return Ok(String::new());
        };
        let description = raw.get_ref().trim().to_string();
        if description.is_empty() || description.contains('\n') {
            return Err(self
                .err(
                    raw.span(),
                    "description",
                    "the description must be one non-empty line",
                )
                .with_hint("leave `description` out for none"));
        }
        Ok(description)
    }

    /// The experiment's name: a plain file-name component.
    pub(super) fn name(&self, raw: &Spanned<String>) -> Result<String> {
        let name = raw.get_ref().trim().to_string();
        match unsafe_file_name(&name) {
            None => Ok(name),
            Some(why) => Err(self
                .err(raw.span(), "name", format!("`{name}` is not a valid name: {why}"))
                .with_hint("use ASCII letters, digits, `-`, `_` and `.`, starting with a letter, digit or `_`; the name becomes a directory of run records and a notebook page")),
        }
    }

    pub(super) fn backend(&self, b: &Spanned<String>) -> Result<BackendKind> {
        BackendKind::parse(b.get_ref()).map_err(|m| {
            let mut e = self.err(b.span(), "backend", m.to_string());
            if let Some(s) = did_you_mean(b.get_ref(), BackendKind::NAMES.iter().copied()) {
                e = e.with_hint(format!("did you mean `{s}`?"));
            }
            e
        })
    }

    /// `precision`: one of the four names, one gradscope can run today, and (written as a
    /// table, or in 16 bits with `training`) mixed precision's master type, f32.
    pub(super) fn precision(&self, p: &Spanned<RawPrecision>, training: bool) -> Result<Precision> {
        let raw = p.get_ref();
        let compute = self.precision_name(p, &raw.compute, "precision")?;
        if compute == Precision::F64 && training {
            return Err(self
                .err(
                    p.span(),
                    "precision",
                    "training in f64 is not supported: the weights, the optimiser's state and the update are kept in f32 on the device, as torch.optim keeps them",
                )
                .with_hint("train in f32 (or mixed precision); a run without [train], and a sweep of such runs, can be in f64"));
        }
        if raw.table && !training {
            return Err(self
                .err(
                    p.span(),
                    "precision",
                    "`{ compute, master }` is mixed precision, which belongs to training: a run without [train] has no master weights",
                )
                .with_hint(format!("write precision = \"{compute}\"")));
        }
        if let Some(master) = &raw.master {
            let m = self.precision_name(p, master, "precision.master")?;
            if m != Precision::F32 {
                return Err(self
                    .err(
                        p.span(),
                        "precision.master",
                        format!("master weights in {m} are not supported: the weights, the optimiser's state and the update are kept in f32"),
                    )
                    .with_hint(format!("write precision = {{ compute = \"{compute}\", master = \"f32\" }}")));
            }
        }
        Ok(compute)
    }

    /// A precision's name at `key` of `p`: one of the four.
    fn precision_name(
        &self,
        p: &Spanned<RawPrecision>,
        name: &str,
        key: &str,
    ) -> Result<Precision> {
        let names = Precision::ALL.map(Precision::name);
        let Some(precision) = Precision::parse(name) else {
            let mut e = self.err(
                p.span(),
                key,
                format!(
                    "unknown precision `{name}`, expected one of: {}",
                    names.join(", ")
                ),
            );
            if let Some(s) = did_you_mean(name, names) {
                e = e.with_hint(format!("did you mean `{s}`?"));
            }
            return Err(e);
        };
        Ok(precision)
    }

    /// The `[[inputs]]`: at least one, names unique.
    pub(super) fn inputs(
        &self,
        raw: &Spanned<Vec<Spanned<RawInput>>>,
        model: &MlpConfig,
        train_rows: Option<usize>,
    ) -> Result<Vec<InputCase>> {
        if raw.get_ref().is_empty() && train_rows.is_none() {
            return Err(self.err(raw.span(), "inputs", "at least one input case is needed"));
        }
        let mut seen = HashSet::new();
        let mut inputs = Vec::new();
        for (i, case) in raw.get_ref().iter().enumerate() {
            let (key, case) = (format!("inputs[{i}]"), case.get_ref());
            let name = self.case_name(&key, case)?;
            if !seen.insert(name.clone()) {
                let m = format!("duplicate case name `{name}`");
                return Err(self.err(case.name.span(), &format!("{key}.name"), m));
            }
            inputs.push(self.input_case(&key, name, case, model, train_rows)?);
        }
        Ok(inputs)
    }

    /// An input case's name: a plain file-name component.
    pub(super) fn case_name(&self, key: &str, case: &RawInput) -> Result<String> {
        let name = case.name.get_ref().trim().to_string();
        if let Some(why) = unsafe_file_name(&name) {
            return Err(self
                .err(
                    case.name.span(),
                    &format!("{key}.name"),
                    format!("`{name}` is not a valid case name: {why}"),
                )
                .with_hint("use ASCII letters, digits, `-`, `_` and `.`, starting with a letter, digit or `_`; the name becomes a file name of tensor dumps"));
        }
        Ok(name)
    }

    /// One input case named `name`, `key` its place (`inputs[2]`).
    pub(super) fn input_case(
        &self,
        key: &str,
        name: String,
        case: &RawInput,
        model: &MlpConfig,
        train_rows: Option<usize>,
    ) -> Result<InputCase> {
        let batch = match &case.batch {
            Some(b) if *b.get_ref() < 1 => {
                return Err(self.err(
                    b.span(),
                    &format!("{key}.batch"),
                    format!("the batch size must be at least 1, found {}", b.get_ref()),
                ));
            }
            Some(b) => Some(*b.get_ref() as usize),
            None => None,
        };
        let (batch, source) = match (&case.distribution, &case.file) {
            (Some(d), None) => {
                let batch = batch.or(train_rows).ok_or_else(|| {
                    self.err(
                        case.name.span(),
                        &format!("{key}.batch"),
                        "missing `batch` (the number of rows to draw)",
                    )
                })?;
                let d = self.distribution(d, &format!("{key}.distribution"))?;
                (batch, InputSource::Distribution(d))
            }
            (None, Some(f)) => self.input_file(&format!("{key}.file"), f, batch, model)?,
            (Some(d), Some(_)) => {
                return Err(self.err(
                    d.span(),
                    &format!("{key}.distribution"),
                    "give either `distribution` or `file`, not both",
                ));
            }
            (None, None) => {
                return Err(self
                    .err(case.name.span(), key, "missing `distribution` or `file`")
                    .with_hint(
                        "e.g. distribution = \"normal\" with batch = 1, or file = \"x.npy\"",
                    ));
            }
        };
        Ok(InputCase {
            name,
            batch,
            source,
        })
    }

    /// An input case's `file` (relative to the config's directory): read, and checked against
    /// the model's input width and the case's `batch`.
    pub(super) fn input_file(
        &self,
        fkey: &str,
        f: &Spanned<String>,
        batch: Option<usize>,
        model: &MlpConfig,
    ) -> Result<(usize, InputSource)> {
        let dir = self.src.path.parent().unwrap_or(std::path::Path::new(""));
        let path = dir.join(f.get_ref());
        let data =
            read_input(&path, self.files).map_err(|e| self.err(f.span(), fkey, e.to_string()))?;
        let (rows, cols) = (data.shape[0], data.shape[1]);
        if cols != model.d_input {
            let m = format!(
                "the file's rows have {cols} values; model.input is {}",
                model.d_input
            );
            return Err(self.err(f.span(), fkey, m));
        }
        if rows == 0 {
            return Err(self.err(f.span(), fkey, "the file holds no rows"));
        }
        if let Some(b) = batch.filter(|b| *b != rows) {
            let s = if rows == 1 { "" } else { "s" };
            let m = format!("the file holds {rows} row{s}; batch says {b}");
            return Err(self.err(f.span(), fkey, m));
        }
        Ok((rows, InputSource::File { path, data }))
    }
}
