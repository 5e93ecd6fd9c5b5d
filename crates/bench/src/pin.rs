//! Pinning a benchmark's thread to a CPU of its own (the cache suite and `cache_loop`).

/// Pins the calling thread to the `n`-th CPU it may run on (modulo their number); does
/// nothing where that is not supported or fails (the run is then merely noisier).
pub(crate) fn pin_to_cpu(n: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: `cpu_set_t` is plain data (all zeros is the empty set); the pointers passed
    // are to live locals of the sizes given; pid 0 is the calling thread.
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.is_empty() {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[n % cpus.len()], &mut one);
        libc::sched_setaffinity(0, size, &one);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = n;
}
