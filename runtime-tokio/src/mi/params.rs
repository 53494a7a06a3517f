//! MI parameters: the request's `params` ([`RawParams`]), the recipe that matches them
//! ([`match_recipe`]) and typed access by name ([`Params`]).
//!
//! As in OpenSIPS' MI core, a command has one or more *recipes*, each a list of parameter
//! names. Positional parameters (a JSON array) select the recipe with as many names and
//! are then named by position; named parameters (a JSON object) select the recipe with the
//! same number of names that contains every given name. An empty array or object is the
//! same as no `params`. Types are checked when the handler reads a parameter:
//!
//! | read as | accepted | otherwise |
//! |---|---|---|
//! | int | a JSON number (truncated to `i32`, saturating) or a string of an optional sign and decimal digits that fits `i32` | −32602 `Bad type for parameter '<name>'` |
//! | string | a JSON string, or a number (written in decimal) | same |
//! | array | a JSON array (items read as strings: strings or numbers) | same; items: `Bad type for array item in parameter '<name>'` |

use serde_json::{Map, Value};

use super::error::MiError;

/// The `params` member of a request, before recipe matching.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RawParams {
    /// No `params`, or an empty array or object.
    #[default]
    None,
    /// A non-empty JSON array.
    Positional(Vec<Value>),
    /// A non-empty JSON object (member order kept).
    Named(Map<String, Value>),
}

impl RawParams {
    /// From the JSON `params` member. `Err` when it is neither an array nor an object.
    ///
    /// # Errors
    /// The value itself, when it is a scalar.
    pub fn from_json(value: Option<Value>) -> Result<Self, Value> {
        match value {
            None => Ok(RawParams::None),
            Some(Value::Array(a)) if a.is_empty() => Ok(RawParams::None),
            Some(Value::Array(a)) => Ok(RawParams::Positional(a)),
            Some(Value::Object(o)) if o.is_empty() => Ok(RawParams::None),
            Some(Value::Object(o)) => Ok(RawParams::Named(o)),
            Some(other) => Err(other),
        }
    }

    /// Positional string parameters, as a remote MI_CMD carries them.
    pub fn positional_strings(params: Vec<String>) -> Self {
        if params.is_empty() {
            RawParams::None
        } else {
            RawParams::Positional(params.into_iter().map(Value::String).collect())
        }
    }

    /// Number of parameters given.
    pub fn len(&self) -> usize {
        match self {
            RawParams::None => 0,
            RawParams::Positional(a) => a.len(),
            RawParams::Named(o) => o.len(),
        }
    }

    /// `true` when no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` for positional (array) parameters.
    pub fn is_positional(&self) -> bool {
        matches!(self, RawParams::Positional(_))
    }

    /// Back to the JSON `params` member (`None` when there are none).
    pub fn to_json(&self) -> Option<Value> {
        match self {
            RawParams::None => None,
            RawParams::Positional(a) => Some(Value::Array(a.clone())),
            RawParams::Named(o) => Some(Value::Object(o.clone())),
        }
    }
}

/// Picks the recipe for `raw` (OpenSIPS `get_cmd_recipe`): the index of the matching
/// recipe in `recipes`.
///
/// # Errors
/// −32602 with `Too few or too many parameters` (no recipe with that count),
/// `Ambiguous call, use named parameters instead` (two recipes with that count, positional)
/// or `Named parameters do not match` (the count matches, the names do not).
pub fn match_recipe<S: AsRef<str>>(recipes: &[Vec<S>], raw: &RawParams) -> Result<usize, MiError> {
    let mut found: Option<usize> = None;
    let mut names_mismatch = false;
    for (index, recipe) in recipes.iter().enumerate() {
        match raw {
            RawParams::None => {
                if recipe.is_empty() {
                    return Ok(index);
                }
            }
            _ if recipe.is_empty() => {}
            RawParams::Positional(a) => {
                if recipe.len() == a.len() {
                    if found.is_some() {
                        return Err(MiError::params_ambiguous());
                    }
                    found = Some(index);
                }
            }
            RawParams::Named(o) => {
                if recipe.len() == o.len() {
                    names_mismatch = true;
                    if recipe.iter().all(|name| o.contains_key(name.as_ref())) {
                        return Ok(index);
                    }
                }
            }
        }
    }
    found.ok_or_else(|| {
        if names_mismatch {
            MiError::params_names()
        } else {
            MiError::params_count()
        }
    })
}

/// The parameters of one call, named by the matched recipe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    raw: RawParams,
    names: Vec<String>,
}

impl Params {
    /// Parameters `raw` named by `recipe` (the names of the matched recipe, in order).
    pub fn new(raw: RawParams, recipe: Vec<String>) -> Self {
        Params { raw, names: recipe }
    }

    /// The names of the matched recipe.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The parameters as received.
    pub fn raw(&self) -> &RawParams {
        &self.raw
    }

    /// `true` when the request had no parameter.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The value of a parameter, `None` when absent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match &self.raw {
            RawParams::None => None,
            RawParams::Positional(a) => {
                let index = self.names.iter().position(|n| n == name)?;
                a.get(index)
            }
            RawParams::Named(o) => o.get(name),
        }
    }

    /// Whether a parameter was given.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A mandatory integer.
    ///
    /// # Errors
    /// `Bad type for parameter '<name>'`; −32000 `Failed to handle parameter` when the
    /// matched recipe has no such parameter (a handler bug, as in OpenSIPS).
    pub fn int(&self, name: &str) -> Result<i32, MiError> {
        self.opt_int(name)?.ok_or_else(missing)
    }

    /// An optional integer (`None` when absent).
    ///
    /// # Errors
    /// `Bad type for parameter '<name>'`.
    pub fn opt_int(&self, name: &str) -> Result<Option<i32>, MiError> {
        self.get(name)
            .map(|v| value_int(v).ok_or_else(|| MiError::bad_type(name)))
            .transpose()
    }

    /// A mandatory string (a number is given in decimal).
    ///
    /// # Errors
    /// As [`Params::int`].
    pub fn string(&self, name: &str) -> Result<String, MiError> {
        self.opt_string(name)?.ok_or_else(missing)
    }

    /// An optional string.
    ///
    /// # Errors
    /// `Bad type for parameter '<name>'`.
    pub fn opt_string(&self, name: &str) -> Result<Option<String>, MiError> {
        self.get(name)
            .map(|v| value_string(v).ok_or_else(|| MiError::bad_type(name)))
            .transpose()
    }

    /// An optional array, as given (it may be empty).
    ///
    /// # Errors
    /// `Bad type for parameter '<name>'` when it is not an array.
    pub fn opt_array(&self, name: &str) -> Result<Option<&[Value]>, MiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.as_slice())),
            Some(_) => Err(MiError::bad_type(name)),
        }
    }

    /// A mandatory, non-empty array of strings (numbers are given in decimal).
    ///
    /// # Errors
    /// `Bad type for parameter '<name>'`, `Empty array in parameter '<name>'`,
    /// `Bad type for array item in parameter '<name>'`.
    pub fn strings(&self, name: &str) -> Result<Vec<String>, MiError> {
        let items = self.opt_array(name)?.ok_or_else(missing)?;
        if items.is_empty() {
            return Err(MiError::empty_array(name));
        }
        array_strings(name, items)
    }
}

/// Every item of an array parameter as a string.
///
/// # Errors
/// `Bad type for array item in parameter '<name>'` for an item that is neither a string
/// nor a number.
pub fn array_strings(name: &str, items: &[Value]) -> Result<Vec<String>, MiError> {
    items
        .iter()
        .map(|v| value_string(v).ok_or_else(|| MiError::bad_array_item(name)))
        .collect()
}

fn missing() -> MiError {
    MiError::server_error("Failed to handle parameter")
}

/// An MI integer: a JSON number (truncated, saturating at the `i32` range) or a decimal
/// string with an optional sign that fits `i32`.
pub fn value_int(v: &Value) -> Option<i32> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
            } else if n.as_u64().is_some() {
                Some(i32::MAX)
            } else {
                // `as` saturates and maps NaN to 0, like cJSON's valueint.
                n.as_f64().map(|f| f as i32)
            }
        }
        Value::String(s) => parse_sint(s),
        _ => None,
    }
}

/// An MI string: a JSON string, or a number written as the integer MI reads from it.
pub fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) => value_int(v).map(|i| i.to_string()),
        _ => None,
    }
}

/// `[+-]?[0-9]+` within the `i32` range.
fn parse_sint(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn raw(v: Value) -> RawParams {
        RawParams::from_json(Some(v)).unwrap()
    }

    fn recipes(r: &[&[&str]]) -> Vec<Vec<String>> {
        r.iter()
            .map(|x| x.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn empty_array_and_object_are_no_params() {
        assert_eq!(raw(json!([])), RawParams::None);
        assert_eq!(raw(json!({})), RawParams::None);
        assert!(RawParams::from_json(Some(json!("x"))).is_err());
        assert!(RawParams::from_json(Some(json!(3))).is_err());
    }

    #[test]
    fn recipes_match_like_opensips() {
        let set_status = recipes(&[
            &["cluster_id", "status"],
            &["cluster_id", "node_id", "status"],
        ]);
        assert_eq!(match_recipe(&set_status, &raw(json!([1, 1]))), Ok(0));
        assert_eq!(match_recipe(&set_status, &raw(json!([1, 3, 0]))), Ok(1));
        assert_eq!(
            match_recipe(
                &set_status,
                &raw(json!({"cluster_id": 1, "node_id": 3, "status": 0}))
            ),
            Ok(1)
        );
        assert_eq!(
            match_recipe(&set_status, &raw(json!({"cluster_id": 1}))),
            Err(MiError::params_count())
        );
        assert_eq!(
            match_recipe(&set_status, &RawParams::None),
            Err(MiError::params_count())
        );
        assert_eq!(
            match_recipe(&set_status, &raw(json!({"cluster_id": 1, "nope": 0}))),
            Err(MiError::params_names())
        );
        let none = recipes(&[&[]]);
        assert_eq!(match_recipe(&none, &RawParams::None), Ok(0));
        assert_eq!(
            match_recipe(&none, &raw(json!({"x": 1}))),
            Err(MiError::params_count())
        );
        let twins = recipes(&[&["a"], &["b"]]);
        assert_eq!(
            match_recipe(&twins, &raw(json!([1]))),
            Err(MiError::params_ambiguous())
        );
        assert_eq!(match_recipe(&twins, &raw(json!({"b": 1}))), Ok(1));
    }

    #[test]
    fn ints_from_numbers_and_numeric_strings() {
        let p = Params::new(
            raw(json!([
                1,
                "2",
                "-3",
                "+4",
                "x",
                2.9,
                "",
                "99999999999",
                99_999_999_999_i64,
                true
            ])),
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        );
        assert_eq!(p.int("a"), Ok(1));
        assert_eq!(p.int("b"), Ok(2));
        assert_eq!(p.int("c"), Ok(-3));
        assert_eq!(p.int("d"), Ok(4));
        assert_eq!(p.int("e"), Err(MiError::bad_type("e")));
        assert_eq!(p.int("f"), Ok(2));
        assert_eq!(p.int("g"), Err(MiError::bad_type("g")));
        assert_eq!(p.int("h"), Err(MiError::bad_type("h")));
        assert_eq!(p.int("i"), Ok(i32::MAX));
        assert_eq!(p.int("j"), Err(MiError::bad_type("j")));
        assert_eq!(p.string("a"), Ok("1".to_owned()));
        assert_eq!(p.opt_int("zz"), Ok(None));
        assert_eq!(
            p.int("zz"),
            Err(MiError::server_error("Failed to handle parameter"))
        );
        assert_eq!(
            MiError::bad_type("cluster_id").data.as_deref(),
            Some("Bad type for parameter 'cluster_id'")
        );
    }

    #[test]
    fn string_arrays() {
        let p = Params::new(
            raw(json!({"s": ["a", 3], "e": [], "b": ["a", {}], "n": "x"})),
            Vec::new(),
        );
        assert_eq!(p.strings("s"), Ok(vec!["a".to_owned(), "3".to_owned()]));
        assert_eq!(p.strings("e"), Err(MiError::empty_array("e")));
        assert_eq!(p.strings("b"), Err(MiError::bad_array_item("b")));
        assert_eq!(p.strings("n"), Err(MiError::bad_type("n")));
        assert_eq!(p.opt_array("zz"), Ok(None));
    }
}
