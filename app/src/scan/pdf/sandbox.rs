//! The PDF worker's seccomp filter: what a parser bug in the child could
//! be turned into, beyond burning its own CPU and memory (which the
//! rlimits bound). The child needs to read its stdin, compute, allocate
//! and write its stdout; it never needs the network, another program, the
//! file system or another process. Those system calls fail with `EPERM`
//! once the filter is on, and the filter cannot be lifted (the kernel sets
//! `no_new_privs` with it, so no set-uid program could be run either).
//!
//! A deny-list rather than an allow-list: an allow-list breaks whenever a
//! dependency or the C library starts using a new system call for the same
//! job (`clone3` for `clone`, `openat2`, `rseq`), and a broken worker costs
//! every PDF's links. What is denied here is what an attacker needs to
//! reach anything outside the child.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule};
use std::collections::BTreeMap;

/// System calls the worker never makes.
fn denied() -> Vec<i64> {
    let mut v = vec![
        // The network.
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        // Other programs.
        libc::SYS_execve,
        libc::SYS_execveat,
        // Opening and changing files (RLIMIT_FSIZE already stops writes).
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_mkdirat,
        libc::SYS_mknodat,
        libc::SYS_fchmodat,
        libc::SYS_fchownat,
        libc::SYS_truncate,
        // Other processes.
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kill,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_send_signal,
        libc::SYS_pidfd_getfd,
        // Namespaces, mounts and kernel attack surface no parser needs.
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
    ];
    // The older calls that aarch64 does not have.
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_mknod,
        libc::SYS_chmod,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_fork,
        libc::SYS_vfork,
    ]);
    v
}

/// The compiled filter.
pub fn program() -> Result<BpfProgram, String> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("no seccomp filter for this architecture: {e}"))?;
    let rules: BTreeMap<i64, Vec<SeccompRule>> = denied().into_iter().map(|n| (n, Vec::new())).collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|e| format!("building the seccomp filter: {e}"))?;
    filter.try_into().map_err(|e| format!("compiling the seccomp filter: {e}"))
}

/// Puts this process (every thread started after it, too) under the filter.
pub fn confine(program: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter(program).map_err(|e| format!("applying the seccomp filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "POSTERN_SANDBOX_TEST_CHILD";

    /// Runs again as a child of itself (so the test process stays
    /// unconfined): after the filter, a socket, a file and a program are
    /// refused, while memory and stdout still work.
    #[test]
    fn the_filter_refuses_the_network_files_and_programs() {
        if std::env::var_os(CHILD).is_some() {
            confine(&program().unwrap()).unwrap();
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_err();
            assert_eq!(socket.raw_os_error(), Some(libc::EPERM), "{socket}");
            let file = std::fs::File::open("/etc/hostname").unwrap_err();
            assert_eq!(file.raw_os_error(), Some(libc::EPERM), "{file}");
            assert!(std::process::Command::new("/bin/true").status().is_err());
            let memory = vec![7u8; 64 << 20];
            println!("confined, {} MiB allocated", memory.len() >> 20);
            return;
        }
        let me = std::env::current_exe().unwrap();
        let out = std::process::Command::new(me)
            .args([
                "--exact",
                "scan::pdf::sandbox::tests::the_filter_refuses_the_network_files_and_programs",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("confined, 64 MiB allocated"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
