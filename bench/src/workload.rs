//! The documents and queries every system gets: the install guide's
//! `user/v1` collection, ~100-byte documents, deterministic parameters.

use serde_json::Value;

/// The install guide's schema, written by hand into `metadata/schemas/`.
pub const USER_SCHEMA: &str = include_str!("../../tests/fixtures/user_v1.json");

/// SQLite's side: the same table and the same indexes.
pub const SQLITE_SCHEMA: &str = "CREATE TABLE user(_id TEXT PRIMARY KEY, name TEXT, age INTEGER);\n\
CREATE INDEX user_name ON user(name);\n\
CREATE INDEX user_age ON user(age);\n";

/// Distinct names: 100 documents share a name at 100,000 documents.
pub const NAMES: u64 = 1000;
/// Ages are 0..AGES.
pub const AGES: u64 = 100;
/// Width of the age range queried: [a, a + RANGE_WIDTH - 1].
pub const RANGE_WIDTH: u64 = 5;

const NAME_PAD: &str = "abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwx";

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A small deterministic generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix(self.0 ^ 0x5DEE_CE66_D1CE_F00D) % bound
    }
}

/// Document number `i`. `_id`s ascend with `i`, so insertion order is
/// `_id` order (SQLite's rowid order then equals AeroDB's `_id` tie order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub id: String,
    pub name: String,
    pub age: i64,
}

pub fn id_of(i: u64) -> String {
    format!("u{i:09}")
}

pub fn name_of(k: u64) -> String {
    format!("name-{k:04}-{NAME_PAD}")
}

pub fn doc(i: u64) -> Doc {
    let mixed = splitmix(i);
    Doc { id: id_of(i), name: name_of(mixed % NAMES), age: ((mixed >> 32) % AGES) as i64 }
}

impl Doc {
    pub fn json(&self) -> String {
        format!(r#"{{"_id":"{}","name":"{}","age":{}}}"#, self.id, self.name, self.age)
    }
    pub fn insert_request(&self) -> String {
        format!(r#"{{"op":"insert","schema_id":"user","schema_version":"v1","document":{}}}"#, self.json())
    }
    pub fn insert_sql(&self) -> String {
        format!("INSERT INTO user(_id, name, age) VALUES('{}', '{}', {});", self.id, self.name, self.age)
    }
}

/// The three query shapes of the issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `_id` lookup.
    Id,
    /// Indexed equality on `name`, limit 10.
    Eq,
    /// Indexed range on `age`, sorted by `age`, limit 20.
    Range,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Id, Kind::Eq, Kind::Range];
    pub fn label(self) -> &'static str {
        match self {
            Kind::Id => "_id lookup",
            Kind::Eq => "indexed equality (name), limit 10",
            Kind::Range => "indexed range (age, 5 values), sort age, limit 20",
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            Kind::Id => "id",
            Kind::Eq => "eq",
            Kind::Range => "range",
        }
    }
    /// The SQL of the prepared statement (`?1`, `?2` bound per query).
    pub fn sql(self) -> &'static str {
        match self {
            Kind::Id => "SELECT _id, name, age FROM user WHERE _id = ?1",
            Kind::Eq => "SELECT _id, name, age FROM user WHERE name = ?1 LIMIT 10",
            Kind::Range => "SELECT _id, name, age FROM user WHERE age >= ?1 AND age <= ?2 ORDER BY age LIMIT 20",
        }
    }
}

/// One query's parameters.
#[derive(Clone, Debug)]
pub enum Param {
    Id(String),
    Eq(String),
    Range(i64, i64),
}

pub fn params(kind: Kind, count: usize, documents: u64, seed: u64) -> Vec<Param> {
    let mut rng = Rng::new(seed ^ ((kind as u64 + 1) * 0x1000_0000));
    (0..count)
        .map(|_| match kind {
            Kind::Id => Param::Id(id_of(rng.below(documents))),
            Kind::Eq => Param::Eq(name_of(rng.below(NAMES))),
            Kind::Range => {
                let low = rng.below(AGES - RANGE_WIDTH + 1) as i64;
                Param::Range(low, low + RANGE_WIDTH as i64 - 1)
            }
        })
        .collect()
}

impl Param {
    /// The AeroDB request (one line of JSON).
    pub fn request(&self) -> String {
        let head = r#"{"op":"query","schema_id":"user","schema_version":"v1","#;
        match self {
            Param::Id(id) => format!(r#"{head}"filter":{{"_id":"{id}"}},"limit":1}}"#),
            Param::Eq(name) => format!(r#"{head}"filter":{{"name":"{name}"}},"limit":10}}"#),
            Param::Range(low, high) => format!(r#"{head}"filter":{{"age":{{"$gte":{low},"$lte":{high}}}}},"sort":"age","limit":20}}"#),
        }
    }
    pub fn request_value(&self) -> Value {
        serde_json::from_str(&self.request()).expect("valid request")
    }
    /// The same query as one SQL statement for the sqlite3 CLI.
    pub fn sql(&self) -> String {
        match self {
            Param::Id(id) => format!("SELECT _id, name, age FROM user WHERE _id = '{id}';"),
            Param::Eq(name) => format!("SELECT _id, name, age FROM user WHERE name = '{name}' LIMIT 10;"),
            Param::Range(low, high) => {
                format!("SELECT _id, name, age FROM user WHERE age >= {low} AND age <= {high} ORDER BY age LIMIT 20;")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_about_100_bytes() {
        let lengths: Vec<usize> = (0..1000).map(|i| doc(i).json().len()).collect();
        assert!(lengths.iter().all(|length| (98..=101).contains(length)), "{lengths:?}");
    }
}
