//! Upcasters: schema evolution of stored events, applied on read.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::codec::CodecError;

type UpcastFn = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

struct Step {
    to_type: Option<String>,
    f: UpcastFn,
}

/// A registry of upcasters keyed by `(event type, schema version)`. Each one maps data
/// at version `v` to version `v + 1` (optionally under a new type name); reading chains
/// them until the current version.
///
/// ```
/// use serde_json::json;
/// use tessera_core::Upcasters;
/// let up = Upcasters::new().register("OrderPlaced", 1, |mut v| {
///     // v1 stored `total` in euros; v2 stores cents.
///     let euros = v["total"].as_u64().ok_or("total missing")?;
///     v["total_cents"] = json!(euros * 100);
///     Ok(v)
/// });
/// let (ty, data) = up.upcast("OrderPlaced", 1, 2, json!({"total": 3})).unwrap();
/// assert_eq!((ty.as_str(), data["total_cents"].as_u64()), ("OrderPlaced", Some(300)));
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Arc<Step>>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.steps.keys().collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    /// No upcasters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step from `from_version` to `from_version + 1` of `event_type`.
    #[must_use]
    pub fn register(
        self,
        event_type: &str,
        from_version: u32,
        f: impl Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.insert(event_type, from_version, None, Arc::new(f))
    }

    /// Registers a step that also renames the event type.
    #[must_use]
    pub fn register_renaming(
        self,
        event_type: &str,
        from_version: u32,
        new_type: &str,
        f: impl Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.insert(
            event_type,
            from_version,
            Some(new_type.to_owned()),
            Arc::new(f),
        )
    }

    fn insert(mut self, ty: &str, from: u32, to_type: Option<String>, f: UpcastFn) -> Self {
        self.steps
            .insert((ty.to_owned(), from), Arc::new(Step { to_type, f }));
        self
    }

    /// Whether no upcaster is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Upcasts `data` of `event_type` from `version` until `current(type)` is reached.
    /// `current` is asked again after each rename.
    pub fn upcast_with(
        &self,
        event_type: &str,
        mut version: u32,
        current: impl Fn(&str) -> u32,
        mut data: Value,
    ) -> Result<(String, Value), CodecError> {
        let mut ty = event_type.to_owned();
        while version < current(&ty) {
            let step =
                self.steps
                    .get(&(ty.clone(), version))
                    .ok_or_else(|| CodecError::Upcast {
                        event_type: ty.clone(),
                        from: version,
                        reason: format!("no upcaster registered to version {}", version + 1),
                    })?;
            data = (step.f)(data).map_err(|reason| CodecError::Upcast {
                event_type: ty.clone(),
                from: version,
                reason,
            })?;
            if let Some(t) = &step.to_type {
                ty.clone_from(t);
            }
            version += 1;
        }
        Ok((ty, data))
    }

    /// Upcasts from `version` to `target` for one event type.
    pub fn upcast(
        &self,
        event_type: &str,
        version: u32,
        target: u32,
        data: Value,
    ) -> Result<(String, Value), CodecError> {
        self.upcast_with(event_type, version, |_| target, data)
    }
}
