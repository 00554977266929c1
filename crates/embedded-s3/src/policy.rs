//! IAM policy documents in the embedded backend, as MinIO evaluates them, so that tests can show
//! what an identity may not do: the chart's read-only gateway cannot write, its seed cannot
//! touch another bucket.
//!
//! MinIO's policies are AWS IAM's JSON (`docs/multi-user/README.md`, "Policies"): statements
//! with `Effect`, `Action` and `Resource` (a string or a list, `*` and `?` wildcards); an
//! explicit `Deny` wins over any `Allow`, and what no statement allows is denied. MinIO's
//! built-in policies (`readwrite`, `readonly`, `writeonly`) are here as MinIO defines them.
//! Condition keys are not evaluated: a document with a `Condition` is refused when added, so no
//! test passes on a condition that was silently ignored.

use serde_json::Value;

/// One statement of a policy.
#[derive(Clone, Debug)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// A parsed policy document.
#[derive(Clone, Debug)]
pub struct Policy {
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses a policy document; the error says what is wrong, as MinIO's
    /// `XMinioMalformedJSON` / `XMinioPolicyInvalid` answers do.
    ///
    /// # Errors
    /// Not JSON, no statements, a statement without `Effect`, `Action` or `Resource`, or with a
    /// `Condition` (not evaluated here).
    pub fn parse(document: &[u8]) -> Result<Self, String> {
        let doc: Value = serde_json::from_slice(document).map_err(|e| format!("not a JSON policy: {e}"))?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(s)) if !s.is_empty() => s,
            Some(s @ Value::Object(_)) => std::slice::from_ref(s),
            _ => return Err("the policy has no Statement".into()),
        };
        let strings = |v: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
            match v {
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(a)) if !a.is_empty() => a
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| format!("{what} must be strings"))
                    })
                    .collect(),
                _ => Err(format!("a statement has no {what}")),
            }
        };
        let statements = statements
            .iter()
            .map(|s| {
                if s.get("Condition").is_some() {
                    return Err("Condition is not evaluated by the embedded backend".to_string());
                }
                let allow = match s.get("Effect").and_then(Value::as_str) {
                    Some("Allow") => true,
                    Some("Deny") => false,
                    _ => return Err("a statement's Effect must be Allow or Deny".into()),
                };
                Ok(Statement {
                    allow,
                    actions: strings(s.get("Action"), "Action")?,
                    resources: strings(s.get("Resource"), "Resource")?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { statements })
    }

    /// Whether `action` (e.g. `s3:GetObject`) on `resource` (e.g. `arn:aws:s3:::b/k`) is
    /// allowed: some statement allows it and none denies it.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let applies =
            |s: &Statement| s.actions.iter().any(|a| glob(a, action)) && s.resources.iter().any(|r| glob(r, resource));
        !self.statements.iter().any(|s| !s.allow && applies(s)) && self.statements.iter().any(|s| s.allow && applies(s))
    }

    /// MinIO's built-in policies (`cmd/iam.go`, `policy.DefaultPolicies`).
    pub fn builtin() -> Vec<(&'static str, Policy)> {
        let one = |actions: &[&str]| Policy {
            statements: vec![Statement {
                allow: true,
                actions: actions.iter().map(|a| (*a).to_string()).collect(),
                resources: vec!["arn:aws:s3:::*".to_string()],
            }],
        };
        vec![
            ("readwrite", one(&["s3:*"])),
            ("readonly", one(&["s3:GetBucketLocation", "s3:GetObject"])),
            ("writeonly", one(&["s3:PutObject"])),
        ]
    }
}

/// The IAM action a request needs, from its S3 operation, as MinIO maps its handlers (a HEAD
/// is the GET's action, listing is `s3:ListBucket`, multipart parts are `s3:PutObject`;
/// HeadBucket, which also takes `s3:HeadBucket`, is checked in [`crate::admin::Access`]).
pub fn action(operation: &str) -> String {
    let action = match operation {
        "HeadObject" => "GetObject",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "ListBuckets" => "ListAllMyBuckets",
        "CreateMultipartUpload" | "UploadPart" | "UploadPartCopy" | "CompleteMultipartUpload" | "CopyObject" => {
            "PutObject"
        }
        "ListParts" => "ListMultipartUploadParts",
        "DeleteObjects" => "DeleteObject",
        other => other,
    };
    format!("s3:{action}")
}

/// The resource ARN of a request: `arn:aws:s3:::bucket[/key]`, or every bucket for the service.
pub fn resource(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
        (Some(b), None) => format!("arn:aws:s3:::{b}"),
        _ => "arn:aws:s3:::*".to_string(),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_and_nothing_is_allowed_by_default() {
        let p = Policy::parse(
            br#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/site/*"]},
                {"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::b/site/secret*"},
                {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}]}"#,
        )
        .unwrap();
        assert!(p.allows("s3:GetObject", "arn:aws:s3:::b/site/a.gif"));
        assert!(!p.allows("s3:GetObject", "arn:aws:s3:::b/site/secret.txt"));
        assert!(!p.allows("s3:PutObject", "arn:aws:s3:::b/site/a.gif"));
        assert!(!p.allows("s3:GetObject", "arn:aws:s3:::other/site/a.gif"));
        assert!(p.allows("s3:ListBucket", "arn:aws:s3:::b"));
        assert!(!p.allows("s3:ListBucket", "arn:aws:s3:::bb"));
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        for (doc, why) in [
            (&b"nope"[..], "not a JSON"),
            (br#"{"Statement":[]}"#, "no Statement"),
            (br#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#, "Resource"),
            (
                br#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{}}]}"#,
                "Condition",
            ),
        ] {
            let err = Policy::parse(doc).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(glob("s3:Get*", "s3:GetObject"));
        assert!(glob("arn:aws:s3:::b?/*", "arn:aws:s3:::b1/x/y"));
        assert!(!glob("arn:aws:s3:::b", "arn:aws:s3:::b/x"));
        assert!(glob("*", ""));
    }
}
