//! A new user's first hour, as the `popug` binary: passwords (changed, set by
//! an admin, reset on the database by a local operator), people's names
//! (task keys and logins wherever an id was wanted), and the commands that
//! show and reset the system (`status`, `events tail`, `reset`,
//! `completions`).

mod commands;
mod helpers;
mod names;
mod passwords;
mod up;
