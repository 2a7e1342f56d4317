//! A headless browser for the operator console's tests: Debian's `chromium` driven through
//! its `chromedriver` over WebDriver (fantoccini), with bounded waits that say what they
//! waited for, keyboard and dialog helpers, screenshots, and an accessibility check run in
//! the page ([`Browser::accessibility_problems`]).
//!
//! Needs the `chromium` and `chromium-driver` packages (`apt-get install chromium
//! chromium-driver`); `bash scripts/test.sh` installs them when missing.
//!
//! ```ignore
//! let browser = Browser::start().await;
//! browser.goto(&format!("{}/admin", shop.base)).await;
//! browser.click("button#refresh").await;
//! browser.wait_for_text("#status", "up to date").await;
//! assert_eq!(browser.accessibility_problems().await, Vec::<String>::new());
//! browser.close().await;
//! ```

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// How long the `wait_*` helpers poll before they panic.
pub const WAIT: Duration = Duration::from_secs(15);
/// How long chromedriver and the browser get to start (a shared 2-core machine is slow).
const START: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
const INSTALL: &str = "install them with `apt-get install -y chromium chromium-driver` \
     (as root or with sudo); `bash scripts/test.sh` installs them when missing";

/// A headless chromium under a private chromedriver, which is shut down (and killed if it
/// lingers) when the `Browser` is dropped.
pub struct Browser {
    client: Client,
    // Dropped after `client`: shuts the driver (and with it the browser) down.
    _driver: Driver,
}

impl Browser {
    /// Starts `chromedriver` on a free port, waits until it answers, and opens a headless
    /// chromium session (1280×900). Panics, saying how to install them, when chromium or
    /// chromedriver is missing.
    pub async fn start() -> Self {
        let chromium = find_program("chromium").unwrap_or_else(|| {
            panic!("chromium is not installed (no `chromium` on PATH): {INSTALL}")
        });
        let chromedriver = find_program("chromedriver").unwrap_or_else(|| {
            panic!("chromedriver is not installed (no `chromedriver` on PATH): {INSTALL}")
        });
        let driver = Driver::start(&chromedriver).await;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are a JSON object")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = driver.url();
        let connect = builder.connect(&url);
        let client = match tokio::time::timeout(START, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("chromedriver could not start {}: {e}", chromium.display()),
            Err(_) => panic!("chromium did not start within {START:?}"),
        };
        Self {
            client,
            _driver: driver,
        }
    }

    /// The fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The first element matching the CSS selector `css`, polled for up to [`WAIT`]; panics
    /// naming the selector and the current page.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return element;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no element matches `{css}` after {WAIT:?} on {}",
                    self.page().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (up to [`WAIT`]) until an element matching `css` contains `needle` in its
    /// rendered text, and returns it.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut seen = Vec::new();
            for element in self
                .client
                .find_all(Locator::Css(css))
                .await
                .unwrap_or_default()
            {
                let Ok(text) = element.text().await else {
                    continue; // replaced by the page while we looked
                };
                if text.contains(needle) {
                    return element;
                }
                seen.push(text);
            }
            if Instant::now() >= deadline {
                panic!(
                    "no element matching `{css}` contains {needle:?} after {WAIT:?} on {} \
                     (texts seen: {seen:?})",
                    self.page().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the first element matching `css` (waiting for it to appear).
    pub async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        if let Err(e) = element.click().await {
            panic!("clicking `{css}` on {}: {e}", self.page().await);
        }
    }

    /// The rendered text of the first element matching `css` (waiting for it to appear).
    pub async fn text(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        match element.text().await {
            Ok(text) => text,
            Err(e) => panic!("reading the text of `{css}` on {}: {e}", self.page().await),
        }
    }

    /// Replaces the value of the form field matching `css` by typing `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.wait_for(css).await;
        let typed = async {
            element.clear().await?;
            element.send_keys(value).await
        };
        if let Err(e) = typed.await {
            panic!("typing into `{css}` on {}: {e}", self.page().await);
        }
    }

    /// Presses and releases `key` (e.g. [`Key::Tab`], [`Key::Enter`]) wherever the focus is,
    /// as a keyboard user would.
    pub async fn press_key(&self, key: Key) {
        let keyboard = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: key.into() })
            .then(KeyAction::Up { value: key.into() });
        if let Err(e) = self.client.perform_actions(keyboard).await {
            panic!("pressing {key:?} on {}: {e}", self.page().await);
        }
    }

    /// What the focused element says: its rendered text, else its `aria-label`, else its
    /// value; empty when nothing but the page has focus.
    pub async fn active_element_text(&self) -> String {
        let described = self
            .client
            .execute(
                "const e = document.activeElement;
                 if (!e || e === document.body) return '';
                 return (e.innerText || '').trim() || e.getAttribute('aria-label') || e.value || '';",
                vec![],
            )
            .await;
        match described {
            Ok(Value::String(text)) => text,
            other => panic!("reading the focused element: {other:?}"),
        }
    }

    /// Whether the first element matching `css` has the keyboard focus.
    pub async fn is_focused(&self, css: &str) -> bool {
        let focused = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]);
                 return e !== null && e === document.activeElement;",
                vec![json!(css)],
            )
            .await;
        match focused {
            Ok(Value::Bool(focused)) => focused,
            other => panic!("checking the focus of `{css}`: {other:?}"),
        }
    }

    /// Waits (up to [`WAIT`]) for a `window.confirm` (or `alert`) dialog, accepts it and
    /// returns its message.
    pub async fn accept_confirm(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(message) = self.client.get_alert_text().await {
                if let Err(e) = self.client.accept_alert().await {
                    panic!("accepting the dialog {message:?}: {e}");
                }
                return message;
            }
            if Instant::now() >= deadline {
                panic!("no dialog opened within {WAIT:?} on {}", self.page().await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves a PNG of the window as `<target dir>/console-screenshots/<name>.png` and returns
    /// its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("taking screenshot {name}: {e}"),
        };
        let dir = target_dir().join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Runs [`ACCESSIBILITY_CHECK`] in the current page: one line per problem, each naming
    /// the element (selector and a text excerpt) and what it lacks.
    pub async fn accessibility_problems(&self) -> Vec<String> {
        let result = self.client.execute(ACCESSIBILITY_CHECK, vec![]).await;
        let problems = match result {
            Ok(Value::Array(problems)) => problems,
            other => panic!(
                "the accessibility check failed on {}: {other:?}",
                self.page().await
            ),
        };
        problems
            .into_iter()
            .map(|p| match p {
                Value::String(p) => p,
                other => other.to_string(),
            })
            .collect()
    }

    /// Ends the browser session (the driver stops when the `Browser` is dropped).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// The current URL and title, for messages.
    async fn page(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map_or_else(|e| format!("(no URL: {e})"), |u| u.to_string());
        let title = self.client.title().await.unwrap_or_default();
        format!("{url} (title {title:?})")
    }
}

/// A chromedriver child process on a port of its own.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts `chromedriver --port=<free port>` and waits for its `/status` to answer; tries
    /// another port if the one picked was taken meanwhile.
    async fn start(program: &Path) -> Self {
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(program)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("running {}: {e}; {INSTALL}", program.display()));
            let mut driver = Self { child, port };
            let deadline = Instant::now() + START;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = driver.child.try_wait() {
                    break; // exited: most likely the port was taken; try another
                }
                let status = http
                    .get(format!("{}/status", driver.url()))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                if status.is_ok_and(|r| r.status().is_success()) {
                    return driver;
                }
                tokio::time::sleep(POLL).await;
            }
        }
        panic!("{} did not answer on a free port", program.display());
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    /// Asks chromedriver to quit its sessions (closing any browser a failed test left open),
    /// then kills it if it has not exited within 5 seconds.
    fn drop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// `name` as `command -v` finds it on `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the workspace root
/// when relative), else `<workspace>/target`.
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir), // `join` keeps an absolute path as it is
        None => workspace.join("target"),
    }
}

/// The accessibility check run in the page by [`Browser::accessibility_problems`]: returns
/// an array of strings, one per problem.
///
/// - every rendered `input` (but hidden ones), `select` and `textarea` has an accessible
///   name: a `<label for>` or wrapping label with text, `aria-label` or `aria-labelledby`;
/// - every rendered `button` and `a[href]` has text (its own, an image's `alt`, or
///   `aria-label` / `aria-labelledby`);
/// - every `img` has an `alt` (empty for decoration);
/// - the document has a `lang` and a non-empty `<title>`;
/// - every rendered element with text of its own, not disabled, has a WCAG contrast of at
///   least 4.5:1 (3:1 for text of 24px, or 18.66px bold) between its `color` and the
///   background below it: the ancestors' background colours composited over white.
///   Background images and `opacity` are not taken into account.
pub const ACCESSIBILITY_CHECK: &str = r#"
const problems = [];
const clean = (s) => (s || '').replace(/\s+/g, ' ').trim();
const describe = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += '#' + el.id;
  else if (el.getAttribute('name')) s += '[name="' + el.getAttribute('name') + '"]';
  else if (el.classList.length) s += '.' + Array.from(el.classList).join('.');
  const text = clean(el.textContent);
  if (text) s += ' "' + (text.length > 40 ? text.slice(0, 40) + '…' : text) + '"';
  return s;
};
const rendered = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
const labelledBy = (el) => clean((el.getAttribute('aria-labelledby') || '').split(/\s+/)
  .map((id) => document.getElementById(id)).filter(Boolean).map((e) => e.textContent).join(' '));
const ariaName = (el) => clean(el.getAttribute('aria-label')) || labelledBy(el);

for (const el of document.querySelectorAll('input, select, textarea')) {
  const type = (el.getAttribute('type') || '').toLowerCase();
  if (type === 'hidden' || !rendered(el)) continue;
  if (['submit', 'reset', 'button'].includes(type) && clean(el.value)) continue;
  if (type === 'image' && clean(el.alt)) continue;
  const labelText = Array.from(el.labels || []).map((l) => clean(l.textContent)).join('');
  if (!labelText && !ariaName(el)) problems.push(describe(el) + ': form field has no accessible name (label, aria-label or aria-labelledby)');
}
for (const el of document.querySelectorAll('button, a[href]')) {
  if (!rendered(el)) continue;
  const alts = Array.from(el.querySelectorAll('img[alt]')).map((i) => i.alt).join(' ');
  if (!clean(el.textContent) && !clean(alts) && !ariaName(el)) problems.push(describe(el) + ': ' + (el.tagName === 'A' ? 'link' : 'button') + ' has no accessible text (text or aria-label)');
}
for (const el of document.querySelectorAll('img:not([alt])')) problems.push(describe(el) + ' (src ' + el.getAttribute('src') + '): image has no alt');
if (!clean(document.documentElement.getAttribute('lang'))) problems.push('html: document has no lang');
if (!clean(document.title)) problems.push('head: document has no <title>');

const canvas = document.createElement('canvas');
canvas.width = canvas.height = 1;
const ctx = canvas.getContext('2d', { willReadFrequently: true });
const rgba = (color) => {
  ctx.clearRect(0, 0, 1, 1);
  ctx.fillStyle = '#000';
  ctx.fillStyle = color;
  ctx.fillRect(0, 0, 1, 1);
  const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
  return [r, g, b, a / 255];
};
const over = (top, below) => {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + below[i] * (1 - a)).concat(1);
};
const background = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) layers.push(c);
    if (c[3] >= 1) break;
  }
  return layers.reverse().reduce((below, top) => over(top, below), [255, 255, 255, 1]);
};
const luminance = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const css = (c) => 'rgb(' + c.slice(0, 3).map(Math.round).join(', ') + ')';
const skipped = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TITLE', 'OPTION']);
for (const el of document.body ? document.body.querySelectorAll('*') : []) {
  if (skipped.has(el.tagName) || !rendered(el)) continue;
  const own = Array.from(el.childNodes).some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  if (!own || el.closest(':disabled')) continue;
  const style = getComputedStyle(el);
  const bg = background(el);
  const fg = over(rgba(style.color), bg);
  const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  const ratio = (light + 0.05) / (dark + 0.05);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight, 10) >= 700);
  const needed = large ? 3 : 4.5;
  if (ratio < needed) problems.push(describe(el) + ': text contrast ' + ratio.toFixed(2) + ':1 is below ' + needed + ':1 (' + css(fg) + ' on ' + css(bg) + ')');
}
return problems;
"#;

// The harness's self-test: two tiny pages served by axum.

const ACCESSIBLE: &str = r#"<!doctype html>
<html lang="en"><head><title>Accessible</title></head>
<body style="background: #fff; color: #1a1a1a">
  <h1>Orders</h1>
  <label for="name">Name</label> <input id="name">
  <button id="greet" onclick="document.getElementById('greeting').textContent = 'Hello, ' + document.getElementById('name').value">Greet</button>
  <p id="greeting" aria-live="polite"></p>
  <button id="delete" aria-label="Delete order 7" onclick="if (confirm('Delete order 7?')) document.getElementById('status').textContent = 'deleted'">✕</button>
  <p id="status">kept</p>
  <p style="background: #205080; color: #fff">Light on dark</p>
  <a href="/bad">Another page</a>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">
</body></html>"#;

const INACCESSIBLE: &str = r#"<!doctype html>
<html lang="en"><head><title>Inaccessible</title></head>
<body>
  <input id="search">
  <button id="go"></button>
  <p class="hint" style="color: #cccccc">faint hint</p>
</body></html>"#;

/// Serves the two pages on 127.0.0.1; returns the base URL.
async fn pages() -> String {
    let app = axum::Router::new()
        .route("/good", get(|| async { Html(ACCESSIBLE) }))
        .route("/bad", get(|| async { Html(INACCESSIBLE) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn browser_harness_checks_a_page() {
    let base = pages().await;
    let browser = Browser::start().await;

    browser.goto(&format!("{base}/good")).await;
    let title = browser.client().title().await.expect("the title");
    assert_eq!(title, "Accessible");
    assert_eq!(browser.accessibility_problems().await, Vec::<String>::new());
    assert_eq!(browser.text("h1").await, "Orders");

    browser.fill("#name", "Ada").await;
    browser.click("#greet").await;
    browser.wait_for_text("#greeting", "Hello, Ada").await;

    browser.click("#name").await;
    browser.press_key(Key::Tab).await;
    assert!(
        browser.is_focused("#greet").await,
        "Tab moves from the field to Greet"
    );
    assert_eq!(browser.active_element_text().await, "Greet");

    browser.click("#delete").await;
    assert_eq!(browser.accept_confirm().await, "Delete order 7?");
    browser.wait_for_text("#status", "deleted").await;

    let shot = browser.screenshot("harness-self-test").await;
    let png = std::fs::read(&shot).expect("the screenshot file");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        shot.display()
    );

    browser.goto(&format!("{base}/bad")).await;
    let problems = browser.accessibility_problems().await;
    let named = |what: &str| problems.iter().any(|p| p.contains(what));
    assert!(
        named("input#search: form field has no accessible name"),
        "{problems:#?}"
    );
    assert!(
        named("button#go: button has no accessible text"),
        "{problems:#?}"
    );
    assert!(
        named(r#"p.hint "faint hint": text contrast 1.61:1"#),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");

    browser.close().await;
}
