// Per-process CPU time and memory from /proc (Linux only).
//
// We measure the *server* process from outside instead of instrumenting it, so the
// same code works for the reference servers and for Ferry, which we don't modify.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** Clock ticks per second for utime/stime in /proc/<pid>/stat (almost always 100). */
export const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system) used so far by all threads of `pid`.
 * Worker threads and libuv's thread pool (fs writes) are included; child processes are not.
 */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) is in parentheses and may contain spaces: parse after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (field 14) is fields[11] and stime fields[12].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLK_TCK;
}

/** Current (VmRSS) and peak (VmHWM) resident set size of `pid`, in bytes. */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => {
    const m = status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Reset the peak-RSS counter (VmHWM) to the current RSS, so the peak read after a run
 * belongs to that run and not to an earlier, bigger one. Writing "5" to clear_refs does
 * exactly this (Linux >= 4.0); returns false where that isn't allowed, in which case
 * VmHWM is the process-lifetime peak.
 */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** One snapshot: CPU seconds and memory. */
export function sample(pid) {
  return { cpu: cpuSeconds(pid), ...memory(pid) };
}
