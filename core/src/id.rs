//! Identifiers shared by every state machine: node and cluster ids.

use core::fmt;

/// Largest id the wire can carry: ids travel as C `int` (`i32`) and must be ≥ 1.
pub const MAX_ID: u32 = i32::MAX as u32;

/// A node id. Node ids are global: the same id names the same node in every cluster
/// it belongs to (docs/behaviour.md §1.2).
///
/// Valid ids are `1..=i32::MAX`, the range OpenSIPS accepts (`my_node_id ≥ 1`, `int` on the
/// wire). The constructor enforces it, so every `NodeId` can be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeId(u32);

/// A cluster id (`cluster_id` column / modparam). Same range rules as [`NodeId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClusterId(u32);

macro_rules! id_impl {
    ($ty:ident) => {
        impl $ty {
            /// The smallest valid id, 1.
            pub const MIN: Self = Self(1);

            /// The largest valid id, `i32::MAX`.
            pub const MAX: Self = Self(MAX_ID);

            /// Builds the id, or `None` when `value` is 0 or above `i32::MAX`.
            pub const fn new(value: u32) -> Option<Self> {
                if value >= 1 && value <= MAX_ID {
                    Some(Self(value))
                } else {
                    None
                }
            }

            /// Builds the id from the signed value found on the wire, or `None` when it is
            /// not in `1..=i32::MAX`.
            pub const fn from_wire(value: i32) -> Option<Self> {
                if value >= 1 {
                    Some(Self(value as u32))
                } else {
                    None
                }
            }

            /// The numeric value.
            pub const fn get(self) -> u32 {
                self.0
            }

            /// The value as the wire's signed `int` (always positive).
            pub const fn to_wire(self) -> i32 {
                // The constructor keeps the value ≤ i32::MAX, so the cast is lossless.
                self.0 as i32
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl TryFrom<u32> for $ty {
            type Error = InvalidId;
            fn try_from(value: u32) -> Result<Self, InvalidId> {
                Self::new(value).ok_or(InvalidId(i64::from(value)))
            }
        }

        impl TryFrom<i64> for $ty {
            type Error = InvalidId;
            fn try_from(value: i64) -> Result<Self, InvalidId> {
                u32::try_from(value)
                    .ok()
                    .and_then(Self::new)
                    .ok_or(InvalidId(value))
            }
        }
    };
}

id_impl!(NodeId);
id_impl!(ClusterId);

/// An id outside `1..=i32::MAX` was given; the value is kept for the error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InvalidId(pub i64);

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id {} is out of range (expected 1..={})", self.0, MAX_ID)
    }
}

impl core::error::Error for InvalidId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_only_the_wire_range() {
        assert!(NodeId::new(0).is_none());
        assert_eq!(NodeId::new(1).map(NodeId::get), Some(1));
        assert!(NodeId::new(MAX_ID).is_some());
        assert!(NodeId::new(MAX_ID + 1).is_none());
        assert!(ClusterId::from_wire(-1).is_none());
        assert!(ClusterId::from_wire(0).is_none());
        assert_eq!(ClusterId::from_wire(7).map(ClusterId::get), Some(7));
        assert_eq!(NodeId::try_from(-5i64), Err(InvalidId(-5)));
    }
}
