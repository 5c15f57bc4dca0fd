//! Keeping secrets out of reach of other processes of the same user and
//! out of core files. A craik process holds credentials in memory (the
//! proxy for its whole life); an agent it runs is of the same user and,
//! by default, could read `/proc/<craik>/mem` or `environ`, attach a
//! debugger, or make it dump core with SIGQUIT.

/// Marks this process non-dumpable (`PR_SET_DUMPABLE` 0: no ptrace attach
/// and no `/proc/<pid>/mem`, `environ` or `maps` for other processes of
/// the user, and no core file) and sets its soft core-size limit to 0 (no
/// core even where `fs.suid_dumpable` would write one). Children regain
/// dumpability at `execve`, and may raise the soft limit again.
///
/// Call it first thing; it never fails the program (a platform without
/// the call keeps running, as before).
pub fn protect_process() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: limit.maximum,
        },
    );
}
