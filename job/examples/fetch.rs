//! The seed's Fetch job, ported: fetch a URL, write it to a temporary file, rename it into place.
//!
//! ```sh
//! FETCH_URL=http://127.0.0.1:8000/ cargo run --example fetch -- --maxtime 180
//! cargo run --example fetch -- --help     # every ll.sisyphus option with this job's defaults
//! ```
//!
//! (A plain HTTP/1.0 GET over `std::net`, so the example needs no HTTP client crate.)

use std::io::{Read, Write};
use std::net::TcpStream;

use sisyphus_job::{execute_with_args, Context, Error, Job, Options};

struct Fetch {
    url: String,
    tmpname: String,
    officialname: String,
}

impl Job for Fetch {
    fn options(&self) -> Options {
        let mut o = Options::new("ACME.FooBar", "Fetch");
        o.maxtime = std::time::Duration::from_secs(3 * 60);
        o
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "fetch {} and save it to a local file ({})",
            self.url, self.officialname
        ))
    }

    fn execute(&mut self, ctx: &Context) -> Result<Option<String>, Error> {
        ctx.log(format!("fetching data from {:?}", self.url));
        let data = get(&self.url)?;
        ctx.log(format!(
            "writing file {:?} ({} bytes)",
            self.tmpname,
            data.len()
        ));
        std::fs::write(&self.tmpname, &data)?;
        ctx.log(format!(
            "renaming file {:?} to {:?}",
            self.tmpname, self.officialname
        ));
        std::fs::rename(&self.tmpname, &self.officialname)?;
        Ok(Some(format!(
            "cached {:?} as {:?} ({} bytes)",
            self.url,
            self.officialname,
            data.len()
        )))
    }
}

/// The body of an `http://host:port/path` URL.
fn get(url: &str) -> Result<Vec<u8>, Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host)?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header in the response")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        return Err(format!("GET {url}: HTTP status {status}").into());
    }
    Ok(response[split + 4..].to_vec())
}

fn main() {
    execute_with_args(Fetch {
        url: std::env::var("FETCH_URL").unwrap_or_else(|_| "http://127.0.0.1:8000/".into()),
        tmpname: format!("Fetch_Tmp_{}.html", std::process::id()),
        officialname: std::env::var("FETCH_TO").unwrap_or_else(|_| "Fetched.html".into()),
    })
}
