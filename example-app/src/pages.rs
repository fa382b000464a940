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

use crate::db::{MOODS, Profile, Reflection};
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
    fn picture(&self, sizes: &'static str, class: &'static str, priority: bool) -> String {
        let (name, alt) = PHOTOS[self.id.rem_euclid(PHOTOS.len() as i64) as usize];
        ASSETS
            .picture(name)
            .map(|p| {
                p.alt(alt)
                    .sizes(sizes)
                    .class(class)
                    .priority(priority)
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// The card's photograph: a third of the main column on wide screens. The first card
    /// of a list that opens the page is its largest image on a phone: `first` loads it
    /// eagerly, with high priority; the others load as they scroll into view.
    pub fn thumbnail(&self, first: bool) -> String {
        // Below 40rem a card spans the column less the main's and the card's padding.
        self.picture(
            "(min-width: 60rem) 18rem, (min-width: 40rem) 45vw, calc(100vw - 6.5rem)",
            "card-photo",
            first,
        )
    }

    /// The reflection page's photograph, as wide as the main column: the page's largest
    /// image, so it loads at once, with high priority.
    pub fn photo(&self) -> String {
        self.picture(
            "(min-width: 60rem) 53.5rem, calc(100vw - 6.5rem)",
            "article-photo",
            true,
        )
    }
}

/// Reflections per page of the journal.
pub const PER_PAGE: u32 = 9;

/// The longest search the journal takes, in characters (a longer one is cut).
const MAX_SEARCH: usize = 100;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(index))
        .route("/journal", get(journal))
        .route("/reflections", axum::routing::post(create))
        .route("/reflections/new", get(compose))
        .route("/reflections/{id}", get(show).post(update))
        .route("/reflections/{id}/edit", get(edit))
        .route("/reflections/{id}/delete", axum::routing::post(delete))
        .route("/settings", get(settings).post(save_settings))
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

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Days of mood history the landing page draws.
const HISTORY_DAYS: i64 = 120;

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    layout: &'a Layout,
    profile: Profile,
    latest: Vec<Reflection>,
    this_week: usize,
    mood_chart: String,
}

async fn index(State(state): State<AppState>) -> Response {
    // Rounded to the day, so the cached query's key repeats all day.
    let since = (crate::db::now() / DAY - HISTORY_DAYS) * DAY;
    let (latest, moods, profile) = match tokio::try_join!(
        crate::queries::recent(&state.db, 3),
        crate::queries::moods_by_day(&state.db, since),
        crate::queries::profile(&state.db),
    ) {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    // The last seven days, today included.
    let week_start = crate::db::now() / DAY - 6;
    let this_week = moods
        .iter()
        .filter(|(day, _, _)| *day >= week_start)
        .map(|(_, _, n)| *n as usize)
        .sum();
    render(
        StatusCode::OK,
        &IndexPage {
            layout: &layout("js/journal.js"),
            profile,
            latest,
            this_week,
            mood_chart: mood_chart(&moods),
        },
    )
}

/// The mood history the landing page's chart draws, as JSON: per day (UNIX seconds of its
/// start), each mood written and how often, oldest first.
#[profile_performance(name = "mood_chart")]
fn mood_chart(moods: &[(i64, String, u32)]) -> String {
    serde_json::json!({
        "moods": MOODS,
        "days": moods
            .iter()
            .map(|(day, mood, n)| serde_json::json!([day * DAY, mood, n]))
            .collect::<Vec<_>>(),
    })
    .to_string()
}

#[derive(Debug, Default, Deserialize)]
struct JournalQuery {
    #[serde(default)]
    q: String,
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "journal.html")]
struct JournalView<'a> {
    layout: &'a Layout,
    q: String,
    page: u32,
    pages: u32,
    total: u64,
    reflections: Vec<Reflection>,
}

impl JournalView<'_> {
    /// The address of another page of the same search.
    fn href(&self, page: u32) -> String {
        let mut href = format!("/journal?page={page}");
        if !self.q.is_empty() {
            href.push_str("&q=");
            href.push_str(&percent_encode(&self.q));
        }
        href
    }
}

/// A query-string value, percent-encoded (unreserved characters stay).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn journal(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<JournalQuery>,
) -> Response {
    let q: String = query.q.trim().chars().take(MAX_SEARCH).collect();
    let page = query.page.unwrap_or(1);
    if page == 0 {
        return not_found_page("Pages of the journal start at 1.");
    }
    let found = match crate::queries::journal(&state.db, q.clone(), page, PER_PAGE).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    let pages = (found.total.div_ceil(u64::from(PER_PAGE)) as u32).max(1);
    if page > pages {
        return not_found_page("The journal has fewer pages than that.");
    }
    render(
        StatusCode::OK,
        &JournalView {
            layout: &layout("js/journal.js"),
            q,
            page,
            pages,
            total: found.total,
            reflections: found.reflections,
        },
    )
}

/// The fields of the compose and edit forms.
#[derive(Debug, Default, Deserialize)]
struct ReflectionForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    mood: String,
    #[serde(default)]
    body: String,
}

impl ReflectionForm {
    /// The trimmed title, mood and text, or what is wrong with them.
    fn validate(&self) -> Result<(String, String, String), &'static str> {
        let title = self.title.trim();
        let body = self.body.trim();
        if title.is_empty() || body.is_empty() {
            Err("A reflection needs a title and some text.")
        } else if title.chars().count() > 120 || body.chars().count() > 10_000 {
            Err(
                "That is longer than a reflection can be (120 characters of title, 10,000 of text).",
            )
        } else if !MOODS.contains(&self.mood.as_str()) {
            Err("Pick one of the listed moods.")
        } else {
            Ok((title.into(), self.mood.clone(), body.into()))
        }
    }
}

#[derive(Template)]
#[template(path = "compose.html")]
struct ComposePage<'a> {
    layout: &'a Layout,
    /// `None` for a new reflection.
    id: Option<i64>,
    moods: &'a [&'a str],
    error: Option<&'a str>,
    draft: ReflectionForm,
}

impl ComposePage<'_> {
    fn action(&self) -> String {
        self.id
            .map_or_else(|| "/reflections".into(), |id| format!("/reflections/{id}"))
    }
}

fn compose_page(
    status: StatusCode,
    id: Option<i64>,
    error: Option<&str>,
    draft: ReflectionForm,
) -> Response {
    render(
        status,
        &ComposePage {
            layout: &layout("js/journal.js"),
            id,
            moods: MOODS,
            error,
            draft,
        },
    )
}

async fn compose() -> Response {
    compose_page(
        StatusCode::OK,
        None,
        None,
        ReflectionForm {
            mood: MOODS[0].into(),
            ..ReflectionForm::default()
        },
    )
}

async fn create(State(state): State<AppState>, Form(form): Form<ReflectionForm>) -> Response {
    let (title, mood, body) = match form.validate() {
        Ok(v) => v,
        Err(problem) => {
            return compose_page(StatusCode::UNPROCESSABLE_ENTITY, None, Some(problem), form);
        }
    };
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

/// A reflection's id from its address: `None` (a 404) for anything but a number.
fn reflection_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|id| *id > 0)
}

async fn edit(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = reflection_id(&id) else {
        return not_found_page("There is no reflection at that address.");
    };
    match crate::queries::reflection(&state.db, id).await {
        Ok(Some(r)) => compose_page(
            StatusCode::OK,
            Some(id),
            None,
            ReflectionForm {
                title: r.title,
                mood: r.mood,
                body: r.body,
            },
        ),
        Ok(None) => not_found_page("That reflection does not exist (or no longer does)."),
        Err(e) => db_error(e),
    }
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ReflectionForm>,
) -> Response {
    let Some(id) = reflection_id(&id) else {
        return not_found_page("There is no reflection at that address.");
    };
    let (title, mood, body) = match form.validate() {
        Ok(v) => v,
        Err(problem) => {
            return compose_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(id),
                Some(problem),
                form,
            );
        }
    };
    match state.db.update(id, title, mood, body).await {
        Ok(true) => {
            state.invalidator.flush().await;
            Redirect::to(&format!("/reflections/{id}")).into_response()
        }
        Ok(false) => not_found_page("That reflection does not exist (or no longer does)."),
        Err(e) => db_error(e),
    }
}

async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = reflection_id(&id) else {
        return not_found_page("There is no reflection at that address.");
    };
    match state.db.delete(id).await {
        Ok(true) => {
            state.invalidator.flush().await;
            Redirect::to("/journal").into_response()
        }
        Ok(false) => not_found_page("That reflection does not exist (or no longer does)."),
        Err(e) => db_error(e),
    }
}

#[derive(Template)]
#[template(path = "reflection.html")]
struct ReflectionPage<'a> {
    layout: &'a Layout,
    reflection: Reflection,
    related: Vec<Reflection>,
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = reflection_id(&id) else {
        return not_found_page("There is no reflection at that address.");
    };
    let (reflection, related) = match tokio::try_join!(
        crate::queries::reflection(&state.db, id),
        crate::queries::related(&state.db, id, 3),
    ) {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    match reflection {
        Some(reflection) => render(
            StatusCode::OK,
            &ReflectionPage {
                layout: &layout("js/reflection.js"),
                reflection,
                related,
            },
        ),
        None => not_found_page("That reflection does not exist (or no longer does)."),
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    layout: &'a Layout,
    profile: Profile,
    error: Option<&'a str>,
    saved: bool,
}

#[derive(Debug, Default, Deserialize)]
struct SettingsQuery {
    #[serde(default)]
    saved: bool,
}

async fn settings(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<SettingsQuery>,
) -> Response {
    match crate::queries::profile(&state.db).await {
        Ok(profile) => render(
            StatusCode::OK,
            &SettingsPage {
                layout: &layout("js/site.js"),
                profile,
                error: None,
                saved: query.saved,
            },
        ),
        Err(e) => db_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ProfileForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    weekly_goal: String,
}

async fn save_settings(State(state): State<AppState>, Form(form): Form<ProfileForm>) -> Response {
    let name = form.name.trim().to_string();
    let goal = form
        .weekly_goal
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|g| (1..=14).contains(g));
    let problem = if name.is_empty() || name.chars().count() > 60 {
        Some("A name is 1 to 60 characters.")
    } else if goal.is_none() {
        Some("The weekly goal is a number of reflections from 1 to 14.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let draft = Profile {
            name,
            weekly_goal: goal.unwrap_or(1),
        };
        let page = SettingsPage {
            layout: &layout("js/site.js"),
            profile: draft,
            error: Some(problem),
            saved: false,
        };
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let profile = Profile {
        name,
        weekly_goal: goal.unwrap_or(1),
    };
    match state.db.save_profile(profile).await {
        Ok(()) => {
            state.invalidator.flush().await;
            Redirect::to("/settings?saved=true").into_response()
        }
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
