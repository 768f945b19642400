//! A small address book on AeroDB's typed API.
//!
//! ```text
//! cargo run -p aerodb-engine --example address_book -- ./book add ada "Ada Lovelace" London 36
//! cargo run -p aerodb-engine --example address_book -- ./book add alan "Alan Turing" Wilmslow 41
//! cargo run -p aerodb-engine --example address_book -- ./book city London
//! cargo run -p aerodb-engine --example address_book -- ./book older 40
//! cargo run -p aerodb-engine --example address_book -- ./book remove ada
//! ```
//!
//! The first argument is the database folder (created on first use).

use std::path::Path;
use std::process::ExitCode;

use aerodb_engine::{AeroError, Collection, Database, ErrorCode, Field, Options, Order, Query, SchemaDef};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct Contact {
    _id: String,
    name: String,
    city: String,
    age: i64,
}

fn schema() -> SchemaDef {
    SchemaDef::new("contact", "v1")
        .description("one person in the address book")
        .field("_id", Field::string().description("a short handle"))
        .field("name", Field::string())
        .field("city", Field::string())
        .field("age", Field::int())
        .index("city")
        .index("age")
}

fn open(folder: &Path) -> Result<(Database, Collection), AeroError> {
    let mut db =
        if folder.exists() { Database::open_dir(folder, Options::default())? } else { Database::create(folder, Options::default())? };
    let contacts = db.install_schema_def(&schema())?.collection;
    Ok((db, contacts))
}

fn run(args: &[String]) -> Result<(), AeroError> {
    let usage =
        || AeroError::new(ErrorCode::QueryInvalid, "usage: address_book FOLDER (add ID NAME CITY AGE | city CITY | older AGE | remove ID)");
    let folder = Path::new(args.first().ok_or_else(usage)?);
    let (mut db, contacts) = open(folder)?;
    let command: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let outcome = match command.as_slice() {
        ["add", id, name, city, age] => {
            let age = age.parse().map_err(|_| AeroError::new(ErrorCode::QueryInvalid, "AGE must be an integer"))?;
            let contact = Contact { _id: id.to_string(), name: name.to_string(), city: city.to_string(), age };
            match db.insert(&contacts, &contact) {
                Err(error) if error.code == ErrorCode::WriteDuplicateId => {
                    println!("{id} is already in the book");
                    Ok(())
                }
                other => other.map(|()| println!("added {id}")),
            }
        }
        ["city", city] => db.find::<Contact>(&Query::new(&contacts).eq("city", *city).limit(100)).map(print),
        ["older", age] => {
            let age: i64 = age.parse().map_err(|_| AeroError::new(ErrorCode::QueryInvalid, "AGE must be an integer"))?;
            db.find::<Contact>(&Query::new(&contacts).gt("age", age).sort("age", Order::Asc).limit(100)).map(print)
        }
        ["remove", id] => db.delete(&contacts, id).map(|()| println!("removed {id}")),
        _ => Err(usage()),
    };
    db.shutdown()?;
    outcome
}

fn print(found: Vec<Contact>) {
    for contact in found {
        println!("{:<10} {:<20} {:<12} {}", contact._id, contact.name, contact.city, contact.age);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
