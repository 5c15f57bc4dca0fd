//! The seccomp filter bubblewrap installs in `exec --sandbox`: the
//! kernel keyring's system calls (`add_key`, `request_key`, `keyctl`),
//! and `socket(AF_ALG, ...)`, which can use a possessed key by its
//! serial, fail with `EPERM` for the sandboxed command and everything it
//! starts.
//!
//! A user namespace gets its own user keyring by name, but not by id: a
//! process of the same user can read the ids of the host's `_uid` and
//! `_uid_ses` keyrings in `/proc/keys`, link them into its own session
//! keyring and read what they hold (craik's unlocked store key, and
//! every secret of the kernel-keyring backend). No sandboxed agent needs
//! the kernel keyring, so none of it is reachable. Docker's default
//! profile blocks the same three calls for the same reason.
//!
//! The program is built with seccompiler (Firecracker's compiler, no C
//! library): it checks the architecture first (a system call made under
//! another ABI, such as i386's `int 0x80` on x86_64, kills the process),
//! and on x86_64 also refuses the x32 numbers of the three calls.

use std::io::{Seek, Write};

use crate::Error;

/// The x32 ABI's bit in a system call number (x86_64 only).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// The refused system calls, by this architecture's numbers.
fn refused() -> Vec<i64> {
    let native = [libc::SYS_add_key, libc::SYS_request_key, libc::SYS_keyctl];
    #[allow(unused_mut)]
    let mut all: Vec<i64> = native.to_vec();
    #[cfg(target_arch = "x86_64")]
    all.extend(native.iter().map(|n| n | X32_SYSCALL_BIT));
    all
}

/// `socket(AF_ALG, ...)`: the kernel crypto API can load a key the
/// process possesses by its serial (`ALG_SET_KEY_BY_KEY_SERIAL`, Linux
/// 6.2), using it without any keyring call; the sandbox inherits craik's
/// session keyring, so that would reach the unlock key.
fn af_alg_rule() -> crate::Result<seccompiler::SeccompRule> {
    let bad = |e: seccompiler::BackendError| {
        Error::internal("cannot build the sandbox's seccomp filter", e)
    };
    let cond = seccompiler::SeccompCondition::new(
        0,
        seccompiler::SeccompCmpArgLen::Dword,
        seccompiler::SeccompCmpOp::Eq,
        libc::AF_ALG as u64,
    )
    .map_err(bad)?;
    seccompiler::SeccompRule::new(vec![cond]).map_err(bad)
}

fn target() -> crate::Result<seccompiler::TargetArch> {
    if cfg!(target_arch = "x86_64") {
        Ok(seccompiler::TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(seccompiler::TargetArch::aarch64)
    } else if cfg!(target_arch = "riscv64") {
        Ok(seccompiler::TargetArch::riscv64)
    } else {
        Err(Error::input(
            "--sandbox has no seccomp filter for this architecture",
            "run without --sandbox on this machine (x86_64, aarch64 and riscv64 are supported)",
        ))
    }
}

/// The filter as the kernel reads it: `struct sock_filter` entries in
/// native byte order, which bubblewrap's `--seccomp FD` takes as is.
pub fn program() -> crate::Result<Vec<u8>> {
    let mut rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        refused().into_iter().map(|n| (n, vec![])).collect();
    rules.insert(libc::SYS_socket, vec![af_alg_rule()?]);
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::EPERM as u32),
        target()?,
    )
    .map_err(|e| Error::internal("cannot build the sandbox's seccomp filter", e))?;
    let bpf: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e| Error::internal("cannot compile the sandbox's seccomp filter", e))?;
    let mut bytes = Vec::with_capacity(bpf.len() * 8);
    for i in bpf {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    Ok(bytes)
}

/// The filter in a sealed memory file (no name, no more writes) whose
/// descriptor the next child inherits (it is not close-on-exec):
/// bubblewrap reads it from there. Keep the file open until that child
/// has started.
pub fn inheritable_file() -> crate::Result<std::fs::File> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fail =
        |e: std::io::Error| Error::internal("cannot hand the seccomp filter to bubblewrap", e);
    let fd = rustix::fs::memfd_create(
        "craik-seccomp",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| fail(e.into()))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(&program()?).map_err(fail)?;
    rustix::fs::fcntl_add_seals(
        &f,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .map_err(|e| fail(e.into()))?;
    f.rewind().map_err(fail)?;
    rustix::io::fcntl_setfd(&f, rustix::io::FdFlags::empty()).map_err(|e| fail(e.into()))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_checks_the_architecture_then_refuses_the_keyring_calls() {
        let p = program().unwrap();
        assert_eq!(p.len() % 8, 0);
        let insn = |i: usize| {
            let b = &p[i * 8..i * 8 + 8];
            (
                u16::from_ne_bytes([b[0], b[1]]),
                u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            )
        };
        // BPF_LD|BPF_W|BPF_ABS of seccomp_data.arch (offset 4), then the
        // comparison, then the kill.
        assert_eq!(insn(0), (0x20, 4));
        assert_eq!(insn(2), (0x06, 0x8000_0000));
        let compared: Vec<u32> = (0..p.len() / 8)
            .map(insn)
            .filter(|(code, _)| *code == 0x15)
            .map(|(_, k)| k)
            .collect();
        for n in refused().into_iter().chain([libc::SYS_socket]) {
            assert!(compared.contains(&(n as u32)), "{n} not refused");
        }
        assert!(compared.contains(&(libc::AF_ALG as u32)));
        // Anything else is allowed; the refusal is EPERM.
        let rets: Vec<u32> = (0..p.len() / 8)
            .map(insn)
            .filter(|(code, _)| *code == 0x06)
            .map(|(_, k)| k)
            .collect();
        assert!(rets.contains(&0x7fff_0000));
        assert!(rets.contains(&(0x0005_0000 | libc::EPERM as u32)));
    }
}
