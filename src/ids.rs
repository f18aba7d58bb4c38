//! The one place that says what an account id, a region name, an OU id and an
//! ARN's partition look like. Config, discovery, the trail's paths and the
//! templates all ask here, so "an account id" means one thing everywhere.

/// An AWS account id: exactly 12 digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Loose shape check: `us-east-1`, `us-gov-west-1`, `ap-southeast-5`.
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
        && parts[parts.len() - 1].len() <= 2
}

/// `ou-<root part 4-32>-<8-32>` or a root `r-<4-32>`, lowercase letters and digits.
pub fn is_ou_id(s: &str) -> bool {
    let part = |p: &str, min: usize| {
        (min..=32).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(rest) = s.strip_prefix("ou-") {
        match rest.split_once('-') {
            Some((a, b)) => part(a, 4) && part(b, 8),
            None => false,
        }
    } else if let Some(rest) = s.strip_prefix("r-") {
        part(rest, 4)
    } else {
        false
    }
}

/// The partition of an ARN (`aws`, `aws-us-gov`, `aws-cn`, ...), from its
/// second field: `arn:PARTITION:service:region:account:resource`.
pub fn partition_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next()? == "arn").then_some(())?;
    let p = parts.next()?;
    (!p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(is_account_id("123456789012"));
        assert!(!is_account_id("12345678901"));
        assert!(!is_account_id("1234567890123"));
        assert!(!is_account_id("12345678901a"));
    }

    #[test]
    fn regions_have_the_aws_shape() {
        for ok in ["us-east-1", "us-gov-west-1", "ap-southeast-5", "cn-north-1"] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in ["us-east", "US-EAST-1", "us-east-123", "useast1", "x-y-1"] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn partitions_come_from_the_arn() {
        assert_eq!(
            partition_of_arn("arn:aws:iam::123456789012:root"),
            Some("aws")
        );
        assert_eq!(
            partition_of_arn("arn:aws-us-gov:sts::123456789012:assumed-role/r/s"),
            Some("aws-us-gov")
        );
        assert_eq!(partition_of_arn("arn:aws-cn:iam::1:user/x"), Some("aws-cn"));
        assert_eq!(partition_of_arn("not-an-arn"), None);
        assert_eq!(partition_of_arn("arn::iam::1:x"), None);
    }
}
