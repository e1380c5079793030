//! `GET /user/{id}` from the `users` table, with nothing else: `PORT` and `DATABASE_URL`
//! from the environment, a pool of 10 connections like the generated service's default.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use serde::Serialize;
use sqlx::PgPool;

#[derive(Serialize)]
struct User {
    id: i64,
    name: String,
}

async fn get_user(State(db): State<PgPool>, Path(id): Path<i64>) -> Result<Json<User>, StatusCode> {
    let row: Option<(i64, String)> = sqlx::query_as("SELECT id, name FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&db)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    row.map(|(id, name)| Json(User { id, name }))
        .ok_or(StatusCode::NOT_FOUND)
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let port: u16 = std::env::var("PORT").expect("PORT").parse().expect("a port");
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .expect("the database answers");
    let app = Router::new().route("/user/{id}", get(get_user)).with_state(db);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
