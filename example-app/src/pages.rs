//! The pages: handlers and their askama templates.

use std::collections::BTreeMap;
use std::sync::{LazyLock, OnceLock};

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use perf_rt::monitor::{profile_performance, track_metric};
use serde::Deserialize;

use crate::db::{MOODS, Reflection};
use crate::{ASSETS, AppState};

/// The `asset_url` and `image` filters, for names chosen at run time; the templates'
/// literal names go through the compile-time `asset_url!` and `image!`.
mod filters {
    pub use perf_rt::askama_filters::*;
}

/// What every page's `<head>` needs beyond `asset_url!`: made per request, since the
/// inline import map and the scripts carry the request's CSP nonce.
pub struct Layout {
    import_map: String,
    modulepreload: &'static str,
    /// The browser-metrics script tag (empty when the suite's frontend part is off).
    vitals: &'static str,
    /// The ImageOptimizer script (`critical_css!` loads the placeholder stylesheet with
    /// the rest).
    images: String,
}

/// Set once by [`crate::build`] from the running suite.
pub(crate) static VITALS_TAG: OnceLock<String> = OnceLock::new();

/// Each page's entry module: the chunks it imports are preloaded from `<head>`.
const ENTRIES: [&str; 3] = ["js/site.js", "js/journal.js", "js/reflection.js"];

/// The `modulepreload` links of each entry: the same for every request.
static MODULEPRELOAD: LazyLock<BTreeMap<&'static str, String>> = LazyLock::new(|| {
    ENTRIES
        .iter()
        .map(|e| (*e, ASSETS.modulepreload_tags(e)))
        .collect()
});

fn layout(entry: &'static str) -> Layout {
    Layout {
        import_map: ASSETS.import_map_tag(),
        modulepreload: MODULEPRELOAD.get(entry).map_or("", String::as_str),
        vitals: VITALS_TAG.get().map_or("", String::as_str),
        images: ASSETS.image_optimizer_tag(),
    }
}

/// The photographs a reflection is illustrated with, by its id: names chosen at run time,
/// so they go through `ASSETS.picture` rather than the compile-time `image!`.
const PHOTOS: [(&str, &str); 3] = [
    (
        "img/photos/mountains.jpg",
        "The Aitzgorri range above a meadow and an autumn larch wood",
    ),
    (
        "img/photos/path.jpg",
        "A trail across a meadow below the limestone walls of the Picos de Europa",
    ),
    (
        "img/photos/sunrise.jpg",
        "The sun low over rows of hills, seen from a summit",
    ),
];

impl Reflection {
    fn picture(&self, sizes: &'static str, class: &'static str) -> String {
        let (name, alt) = PHOTOS[self.id.rem_euclid(PHOTOS.len() as i64) as usize];
        ASSETS
            .picture(name)
            .map(|p| p.alt(alt).sizes(sizes).class(class).to_string())
            .unwrap_or_default()
    }

    /// The card's photograph: a third of the main column on wide screens.
    pub fn thumbnail(&self) -> String {
        // Below 40rem a card spans the column less the main's and the card's padding.
        self.picture(
            "(min-width: 60rem) 18rem, (min-width: 40rem) 45vw, calc(100vw - 6.5rem)",
            "card-photo",
        )
    }

    /// The reflection page's photograph, as wide as the main column.
    pub fn photo(&self) -> String {
        self.picture(
            "(min-width: 60rem) 53.5rem, calc(100vw - 6.5rem)",
            "article-photo",
        )
    }
}

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(index))
        .route("/reflections", axum::routing::post(create))
        .route("/reflections/{id}", get(show))
        .route("/about", get(about))
        .route("/coach/prompts", get(coach_prompts))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
}

fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            eprintln!("template error: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

fn db_error(e: rusqlite::Error) -> Response {
    eprintln!("database error: {e}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The journal is unavailable right now; try again shortly.",
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    layout: &'a Layout,
    reflections: Vec<Reflection>,
    mood_chart: String,
    moods: &'a [&'a str],
    error: Option<String>,
    draft_title: String,
    draft_body: String,
}

async fn index_page(
    state: &AppState,
    status: StatusCode,
    error: Option<String>,
    draft: NewReflection,
) -> Response {
    let reflections = match crate::queries::recent(&state.db, 24).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    let mood_chart = mood_chart(&reflections);
    render(
        status,
        &IndexPage {
            layout: &layout("js/journal.js"),
            reflections,
            mood_chart,
            moods: MOODS,
            error,
            draft_title: draft.title,
            draft_body: draft.body,
        },
    )
}

/// The mood counts the home page's chart draws, as a JSON object.
#[profile_performance(name = "mood_chart")]
fn mood_chart(reflections: &[Reflection]) -> String {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for r in reflections {
        *counts.entry(r.mood.as_str()).or_default() += 1;
    }
    format!(
        "{{{}}}",
        counts
            .iter()
            .map(|(m, n)| format!("\"{m}\":{n}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

async fn index(State(state): State<AppState>) -> Response {
    index_page(&state, StatusCode::OK, None, NewReflection::default()).await
}

#[derive(Debug, Default, Deserialize)]
struct NewReflection {
    #[serde(default)]
    title: String,
    #[serde(default)]
    mood: String,
    #[serde(default)]
    body: String,
}

async fn create(State(state): State<AppState>, Form(form): Form<NewReflection>) -> Response {
    let title = form.title.trim().to_string();
    let body = form.body.trim().to_string();
    let problem = if title.is_empty() || body.is_empty() {
        Some("A reflection needs a title and some text.")
    } else if title.chars().count() > 120 || body.chars().count() > 10_000 {
        Some("That is longer than a reflection can be (120 characters of title, 10,000 of text).")
    } else if !MOODS.contains(&form.mood.as_str()) {
        Some("Pick one of the listed moods.")
    } else {
        None
    };
    if let Some(problem) = problem {
        return index_page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(problem.into()),
            form,
        )
        .await;
    }
    let mood = form.mood;
    match state.db.insert(title, mood.clone(), body).await {
        Ok(id) => {
            // The mood is one of MOODS (checked above), so the tag stays bounded.
            let _ = track_metric("reflections_created", 1.0, &[("mood", &mood)]);
            // The next read, through this instance or another, must see the write.
            state.invalidator.flush().await;
            Redirect::to(&format!("/reflections/{id}")).into_response()
        }
        Err(e) => db_error(e),
    }
}

#[derive(Template)]
#[template(path = "reflection.html")]
struct ReflectionPage<'a> {
    layout: &'a Layout,
    reflection: Reflection,
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found_page("There is no reflection at that address.");
    };
    match crate::queries::reflection(&state.db, id).await {
        Ok(Some(reflection)) => render(
            StatusCode::OK,
            &ReflectionPage {
                layout: &layout("js/reflection.js"),
                reflection,
            },
        ),
        Ok(None) => not_found_page("That reflection does not exist (or no longer does)."),
        Err(e) => db_error(e),
    }
}

/// The coach's writing prompts (the `chat` feature asks for them): drawn from the moods
/// the reader wrote most and from their latest reflection, through the cached query.
async fn coach_prompts(State(state): State<AppState>) -> Response {
    let reflections = match crate::queries::recent(&state.db, 24).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    let prompts = coach(&reflections);
    axum::Json(serde_json::json!({ "prompts": prompts })).into_response()
}

/// Three to five prompts for `reflections` (most recent first).
fn coach(reflections: &[Reflection]) -> Vec<String> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for r in reflections {
        *counts.entry(r.mood.as_str()).or_default() += 1;
    }
    let mut moods: Vec<(&str, u32)> = counts.into_iter().collect();
    moods.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut prompts = Vec::new();
    if let Some(latest) = reflections.first() {
        prompts.push(format!(
            "Your latest reflection was \"{}\". What would you tell yourself a week on?",
            latest.title
        ));
    }
    for (mood, n) in moods.iter().take(2) {
        let times = if *n == 1 {
            "once".to_string()
        } else {
            format!("{n} times")
        };
        let days = if *n == 1 { "day" } else { "days" };
        prompts.push(match *mood {
            "stuck" => format!(
                "You felt stuck {times}: what is the smallest next step you keep postponing?"
            ),
            "tired" => {
                format!("Tired {times}: what drained you, and what could you drop this week?")
            }
            "grateful" => {
                format!("Gratitude came up {times}: who made the difference, and do they know?")
            }
            "curious" => format!("You were curious {times}: which question deserves an afternoon?"),
            "energised" => format!("{n} energised {days}: what did they have in common?"),
            _ => format!("You felt {mood} {times}: what made those {days} different?"),
        });
    }
    prompts.push(
        "Describe one decision you made this week as an architect would: what did it support?"
            .into(),
    );
    if reflections.is_empty() {
        prompts
            .push("Write your first reflection: what happened today, and how did it feel?".into());
    }
    prompts
}

#[derive(Template)]
#[template(path = "about.html")]
struct AboutPage<'a> {
    layout: &'a Layout,
}

async fn about() -> Response {
    render(
        StatusCode::OK,
        &AboutPage {
            layout: &layout("js/site.js"),
        },
    )
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage<'a> {
    layout: &'a Layout,
    message: &'a str,
}

fn not_found_page(message: &str) -> Response {
    render(
        StatusCode::NOT_FOUND,
        &NotFoundPage {
            layout: &layout("js/site.js"),
            message,
        },
    )
}

async fn not_found() -> Response {
    not_found_page("There is no page at that address.")
}
