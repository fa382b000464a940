//! The pages: handlers and their askama templates.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::db::{MOODS, Reflection};
use crate::{ASSETS, AppState};

/// What every page's `<head>` needs beyond `asset_url!`: computed once.
pub struct Layout {
    import_map: String,
    modulepreload: String,
}

static LAYOUT: LazyLock<Layout> = LazyLock::new(|| Layout {
    import_map: ASSETS.import_map_tag(),
    modulepreload: ASSETS.modulepreload_tags("js/app.js"),
});

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(index))
        .route("/reflections", axum::routing::post(create))
        .route("/reflections/{id}", get(show))
        .route("/about", get(about))
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
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for r in &reflections {
        *counts.entry(r.mood.as_str()).or_default() += 1;
    }
    let mood_chart = format!(
        "{{{}}}",
        counts
            .iter()
            .map(|(m, n)| format!("\"{m}\":{n}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    render(
        status,
        &IndexPage {
            layout: &LAYOUT,
            reflections,
            mood_chart,
            moods: MOODS,
            error,
            draft_title: draft.title,
            draft_body: draft.body,
        },
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
    match state.db.insert(title, form.mood, body).await {
        Ok(id) => {
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
                layout: &LAYOUT,
                reflection,
            },
        ),
        Ok(None) => not_found_page("That reflection does not exist (or no longer does)."),
        Err(e) => db_error(e),
    }
}

#[derive(Template)]
#[template(path = "about.html")]
struct AboutPage<'a> {
    layout: &'a Layout,
}

async fn about() -> Response {
    render(StatusCode::OK, &AboutPage { layout: &LAYOUT })
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
            layout: &LAYOUT,
            message,
        },
    )
}

async fn not_found() -> Response {
    not_found_page("There is no page at that address.")
}
