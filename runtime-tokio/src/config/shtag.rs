//! `sharing_tag`: `name/cluster_id=active|backup`, plus our opt-in `,election` and
//! `,hold_down=MS` and `,preempt` suffixes (see `clusterer_core::shtag`).
//!
//! Like OpenSIPS (`shtag_modparam_func`): the string is cut at the first `=` and the name
//! part at the first `/`; spaces around each part are trimmed. Stricter than OpenSIPS: the
//! state must be the whole word `active` or `backup` (OpenSIPS compares only as many bytes
//! as were written, so `a` or an empty state mean `active`); case is ignored.

use clusterer_core::{ClusterId, ElectionConfig, ShtagConfig, ShtagState};

/// Parses one `sharing_tag` value.
///
/// # Errors
/// What is wrong, without the key and value (the caller prefixes both):
/// `cluster id "x" is not a number`.
pub(crate) fn parse(text: &str) -> Result<ShtagConfig, String> {
    let Some((tag, rest)) = text.split_once('=') else {
        return Err("expected name/cluster_id=active|backup".to_owned());
    };
    let Some((name, cluster)) = tag.split_once('/') else {
        return Err(format!("\"{}\" is not name/cluster_id", tag.trim()));
    };
    let (name, cluster) = (name.trim(), cluster.trim());
    if name.is_empty() {
        return Err("the tag name is empty".to_owned());
    }
    let cluster = match cluster.parse::<u32>() {
        Ok(n) if cluster.bytes().all(|b| b.is_ascii_digit()) => ClusterId::new(n)
            .ok_or_else(|| format!("cluster id \"{cluster}\" must be at least 1"))?,
        _ => return Err(format!("cluster id \"{cluster}\" is not a number")),
    };
    let mut options = rest.split(',');
    let state = options.next().unwrap_or_default().trim();
    let state = if state.eq_ignore_ascii_case("active") {
        ShtagState::Active
    } else if state.eq_ignore_ascii_case("backup") {
        ShtagState::Backup
    } else {
        return Err(format!("state \"{state}\" is not active or backup"));
    };
    let mut election = false;
    let mut preempt = false;
    let mut hold_down: Option<u64> = None;
    for option in options {
        let option = option.trim();
        if option.eq_ignore_ascii_case("election") {
            if election {
                return Err("\"election\" is given twice".to_owned());
            }
            election = true;
        } else if option.eq_ignore_ascii_case("preempt") {
            if preempt {
                return Err("\"preempt\" is given twice".to_owned());
            }
            preempt = true;
        } else if let Some((key, value)) = option.split_once('=')
            && key.trim().eq_ignore_ascii_case("hold_down")
        {
            if hold_down.is_some() {
                return Err("\"hold_down\" is given twice".to_owned());
            }
            let value = value.trim();
            match value.parse::<u64>() {
                Ok(ms) if value.bytes().all(|b| b.is_ascii_digit()) => hold_down = Some(ms),
                _ => {
                    return Err(format!(
                        "hold_down \"{value}\" is not a number of milliseconds"
                    ));
                }
            }
        } else {
            return Err(format!(
                "unknown option \"{option}\" (expected election, hold_down=MS or preempt)"
            ));
        }
    }
    if hold_down.is_some() && !election {
        return Err("hold_down applies to election mode only (add \",election\")".to_owned());
    }
    if preempt && !election {
        return Err("preempt applies to election mode only (add \",election\")".to_owned());
    }
    Ok(ShtagConfig {
        name: name.to_owned(),
        cluster,
        state,
        election: election.then(|| ElectionConfig {
            hold_down_ms: hold_down.unwrap_or(ElectionConfig::default().hold_down_ms),
            preempt,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u32) -> ClusterId {
        ClusterId::new(n).unwrap()
    }

    #[test]
    fn opensips_forms_parse_with_spaces() {
        let t = parse(" vip / 1 = active ").unwrap();
        assert_eq!(t.name, "vip");
        assert_eq!(t.cluster, cid(1));
        assert_eq!(t.state, ShtagState::Active);
        assert_eq!(t.election, None);
        assert_eq!(parse("gw/12=backup").unwrap().state, ShtagState::Backup);
        assert_eq!(parse("gw/12=BACKUP").unwrap().state, ShtagState::Backup);
    }

    #[test]
    fn election_suffix_with_and_without_hold_down() {
        let t = parse("vip/1=backup,election").unwrap();
        assert_eq!(t.election, Some(ElectionConfig::default()));
        let t = parse("vip/1=active, election, hold_down=500").unwrap();
        assert_eq!(
            t.election,
            Some(ElectionConfig {
                hold_down_ms: 500,
                preempt: false
            })
        );
        let t = parse("vip/1=backup,hold_down = 0,election").unwrap();
        assert_eq!(
            t.election,
            Some(ElectionConfig {
                hold_down_ms: 0,
                preempt: false
            })
        );
        let t = parse("vip/1=backup,election,PREEMPT").unwrap();
        assert!(t.election.is_some_and(|e| e.preempt));
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        assert_eq!(
            parse("vip/x=active").unwrap_err(),
            "cluster id \"x\" is not a number"
        );
        assert_eq!(
            parse("vip/0=active").unwrap_err(),
            "cluster id \"0\" must be at least 1"
        );
        assert_eq!(
            parse("vip/-1=active").unwrap_err(),
            "cluster id \"-1\" is not a number"
        );
        assert_eq!(
            parse("vip=active").unwrap_err(),
            "\"vip\" is not name/cluster_id"
        );
        assert_eq!(
            parse("vip/1").unwrap_err(),
            "expected name/cluster_id=active|backup"
        );
        assert_eq!(parse("/1=active").unwrap_err(), "the tag name is empty");
        assert_eq!(
            parse("vip/1=act").unwrap_err(),
            "state \"act\" is not active or backup"
        );
        assert_eq!(
            parse("vip/1=").unwrap_err(),
            "state \"\" is not active or backup"
        );
        assert_eq!(
            parse("vip/1=active,fast").unwrap_err(),
            "unknown option \"fast\" (expected election, hold_down=MS or preempt)"
        );
        assert_eq!(
            parse("vip/1=active,hold_down=5").unwrap_err(),
            "hold_down applies to election mode only (add \",election\")"
        );
        assert_eq!(
            parse("vip/1=active,preempt").unwrap_err(),
            "preempt applies to election mode only (add \",election\")"
        );
        assert_eq!(
            parse("vip/1=active,election,hold_down=5s").unwrap_err(),
            "hold_down \"5s\" is not a number of milliseconds"
        );
        assert_eq!(
            parse("vip/1=active,election,election").unwrap_err(),
            "\"election\" is given twice"
        );
    }
}
