//! Building the web app for a local run: `npm ci` (when `node_modules` is
//! missing or older than the lockfile) and `npm run build` (which generates
//! the client from `proto/`, type-checks and bundles) in `web/`, but only
//! when the build is missing or older than any of its sources. Nothing built
//! or generated is committed, so a fresh checkout builds once, on its first
//! `popug up`; later runs start at once.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

/// Why the web app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// npm could not be started (not installed?).
    #[error("cannot run `npm {step}` in {dir}: {source} (the web app needs Node 20 and npm)")]
    Spawn {
        /// The npm command.
        step: &'static str,
        /// Where it ran.
        dir: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// npm ran and failed; its output says why.
    #[error("`npm {step}` failed in {dir} ({status}); its output is above")]
    Failed {
        /// The npm command.
        step: &'static str,
        /// Where it ran.
        dir: String,
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// Reading the sources or taking the build lock failed.
    #[error("cannot check the web app's build in {dir}: {source}")]
    Io {
        /// The web app's directory.
        dir: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The checkout's `web/` directory, if this binary was built from a checkout
/// that still has it.
pub fn source_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    dir.join("package.json")
        .is_file()
        .then(|| dir.canonicalize().unwrap_or(dir))
}

/// Builds `web` (the `web/` directory) if its build is missing or stale and
/// returns the built directory (`web/dist`). One build at a time: a lock
/// file makes concurrent callers wait for each other.
pub async fn ensure_built(web: &Path) -> Result<PathBuf, BuildError> {
    let web = web.to_path_buf();
    let io = |source| BuildError::Io {
        dir: web.display().to_string(),
        source,
    };
    let lock_path = web.join(".build-lock");
    let lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|join| io(std::io::Error::other(join)))?
    .map_err(io)?;

    let dist = web.join("dist");
    let built = modified(&dist.join("BUILT"));
    let sources = newest(&source_paths(&web)).map_err(io)?;
    if built.is_some_and(|built| built >= sources) {
        drop(lock);
        return Ok(dist);
    }
    let installed = modified(&web.join("node_modules/.package-lock.json"));
    let lockfile = modified(&web.join("package-lock.json"));
    if installed.is_none() || installed < lockfile {
        npm(&web, "ci", &["ci", "--no-audit", "--no-fund"]).await?;
    }
    npm(&web, "run build", &["run", "build"]).await?;
    drop(lock);
    Ok(dist)
}

/// Everything a build depends on: the app's sources and configuration, and
/// the protos its client is generated from.
fn source_paths(web: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [
        "index.html",
        "package.json",
        "package-lock.json",
        "build.mjs",
        "buf.gen.yaml",
        "tsconfig.json",
        "src",
        "../proto",
        "../buf.yaml",
    ]
    .iter()
    .map(|path| web.join(path))
    .collect();
    paths.retain(|path| path.exists());
    paths
}

/// The newest modification time under `paths` (generated code excluded).
fn newest(paths: &[PathBuf]) -> std::io::Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let metadata = std::fs::metadata(&path)?;
        newest = newest.max(metadata.modified()?);
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                let entry = entry?;
                if entry.file_name() != "gen" {
                    pending.push(entry.path());
                }
            }
        }
    }
    Ok(newest)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

async fn npm(web: &Path, step: &'static str, args: &[&str]) -> Result<(), BuildError> {
    tracing::info!(dir = %web.display(), "building the web app: npm {step}");
    let status = tokio::process::Command::new("npm")
        .args(args)
        .current_dir(web)
        // npm's progress goes to our stderr; stdout stays for the banner.
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .await
        .map_err(|source| BuildError::Spawn {
            step,
            dir: web.display().to_string(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed {
            step,
            dir: web.display().to_string(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_source_counts_but_generated_code_does_not() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("gen")).expect("dirs");
        let at = |seconds: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        let write = |path: &Path, seconds: u64| {
            let file = std::fs::File::create(path).expect("a file");
            file.set_modified(at(seconds)).expect("its time");
        };
        write(&src.join("main.ts"), 2_000);
        write(&src.join("gen/x_pb.ts"), 9_000);
        for dir in [&src, &src.join("gen")] {
            std::fs::File::open(dir)
                .and_then(|file| file.set_modified(at(1_000)))
                .expect("a directory's time");
        }
        let sources = std::slice::from_ref(&src);
        assert_eq!(newest(sources).expect("times"), at(2_000));
        write(&src.join("page.ts"), 3_000);
        std::fs::File::open(&src)
            .and_then(|file| file.set_modified(at(1_000)))
            .expect("a directory's time");
        assert_eq!(newest(sources).expect("times"), at(3_000));
    }
}
