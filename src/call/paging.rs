//! Following `NextToken`s without being fooled. A listing ends when the service
//! sends no token; a token it already sent, or a listing past any sane length,
//! is not the service speaking (a proxy, a wrong endpoint, a bug) and fails the
//! listing instead of looping forever or passing for its last page.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// Why a listing was stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    #[error("the service returned a NextToken it had already returned (page {page}): the listing would never end")]
    RepeatedToken { page: u64 },
    #[error("the listing did not end after {pages} pages")]
    TooManyPages { pages: u64 },
}

impl From<PagingError> for super::CallFailure {
    /// A listing that will not end is not retried: the same call gives the same token.
    fn from(e: PagingError) -> Self {
        super::CallFailure {
            class: super::ErrorClass::Fatal,
            code: "paging".into(),
            message: e.to_string(),
        }
    }
}

/// The tokens of one listing so far.
#[derive(Debug)]
pub struct Tokens {
    /// Hashes of every token seen: a cycle of any length is caught, in 8 bytes a page.
    seen: HashSet<u64, BuildHasherDefault<DefaultHasher>>,
    pages: u64,
    max_pages: u64,
}

impl Tokens {
    /// A listing of at most `max_pages` pages.
    pub fn new(max_pages: u64) -> Self {
        Tokens {
            seen: HashSet::default(),
            pages: 0,
            max_pages,
        }
    }

    /// Pages taken so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// A page arrived with `next`: the token to send for the next page, `None`
    /// when the listing is over (no token, or an empty one), or why it must stop.
    pub fn next(&mut self, next: Option<&str>) -> Result<Option<String>, PagingError> {
        self.pages += 1;
        let Some(token) = next.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if self.pages >= self.max_pages {
            return Err(PagingError::TooManyPages { pages: self.pages });
        }
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(token);
        if !self.seen.insert(hash) {
            return Err(PagingError::RepeatedToken { page: self.pages });
        }
        Ok(Some(token.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_ends_without_a_token() {
        let mut t = Tokens::new(10);
        assert_eq!(t.next(Some("a")).unwrap().as_deref(), Some("a"));
        assert_eq!(t.next(Some("b")).unwrap().as_deref(), Some("b"));
        assert_eq!(t.next(None).unwrap(), None);
        assert_eq!(t.pages(), 3);
        assert_eq!(Tokens::new(10).next(Some("")).unwrap(), None);
    }

    #[test]
    fn a_token_seen_before_stops_the_listing() {
        let mut t = Tokens::new(100);
        t.next(Some("a")).unwrap();
        assert_eq!(
            t.next(Some("a")),
            Err(PagingError::RepeatedToken { page: 2 })
        );
        let mut t = Tokens::new(100);
        for tok in ["a", "b", "c"] {
            t.next(Some(tok)).unwrap();
        }
        assert!(t.next(Some("b")).is_err(), "a longer cycle is caught too");
    }

    #[test]
    fn a_listing_past_its_bound_stops() {
        let mut t = Tokens::new(3);
        t.next(Some("1")).unwrap();
        t.next(Some("2")).unwrap();
        assert_eq!(
            t.next(Some("3")),
            Err(PagingError::TooManyPages { pages: 3 })
        );
    }
}
