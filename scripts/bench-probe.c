/*
 * Runs one command and measures that process alone, without its children:
 * CPU time and peak resident set size. scripts/bench compiles this file and
 * puts it in front of each distcc client it measures.
 *
 * Usage: bench-probe OUTPUT-FILE COMMAND [ARGUMENT...]
 *
 * The command runs under ptrace, stopped only when it exits (and when it
 * receives a signal, which is passed on unchanged). At the exit stop its
 * memory still exists, so the probe reads from /proc/PID:
 *   schedstat  field 1: nanoseconds on a CPU, user and system time together
 *   status     VmHWM: peak resident set size in KiB
 * getrusage and wait4 cannot give these numbers, because they add the
 * preprocessor and other children that the client waits for.
 *
 * One line is appended to OUTPUT-FILE: "CPU-NS PEAK-RSS-KIB EXECS". EXECS
 * counts the command's own execve calls after its start. A distcc client that
 * compiles locally replaces itself with the compiler, so a non-zero value
 * marks a job whose numbers are partly the compiler's. The probe exits with
 * the command's exit status, or 128 + the signal that ended it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reads the first number of /proc/PID/schedstat, or -1. */
static long long read_cpu_ns(pid_t pid)
{
    char path[64];
    long long ns = -1;
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    if (fscanf(file, "%lld", &ns) != 1)
        ns = -1;
    fclose(file);
    return ns;
}

/* Reads VmHWM from /proc/PID/status in KiB, or -1. */
static long read_peak_rss_kib(pid_t pid)
{
    char path[64];
    char line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    while (fgets(line, sizeof line, file) != NULL) {
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    }
    fclose(file);
    return kib;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-probe OUTPUT-FILE COMMAND [ARGUMENT...]\n");
        return 2;
    }
    const char *output_path = argv[1];

    pid_t pid = fork();
    if (pid < 0) {
        perror("bench-probe: fork failed");
        return 2;
    }
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
            perror("bench-probe: PTRACE_TRACEME failed");
            _exit(127);
        }
        execvp(argv[2], argv + 2);
        fprintf(stderr, "bench-probe: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }

    int status;
    /* The first stop is the SIGTRAP that follows the traced execvp. */
    if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
        fprintf(stderr, "bench-probe: %s did not start\n", argv[2]);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
    }
    ptrace(PTRACE_SETOPTIONS, pid, NULL,
           (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL));
    ptrace(PTRACE_CONT, pid, NULL, NULL);

    long long cpu_ns = -1;
    long peak_rss_kib = -1;
    int execs = 0;
    for (;;) {
        if (waitpid(pid, &status, 0) != pid) {
            if (errno == EINTR)
                continue;
            perror("bench-probe: waitpid failed");
            return 2;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status))
            break;
        if (!WIFSTOPPED(status))
            continue;
        int event = status >> 16;
        int signal_to_pass = 0;
        if (event == PTRACE_EVENT_EXIT) {
            cpu_ns = read_cpu_ns(pid);
            peak_rss_kib = read_peak_rss_kib(pid);
        } else if (event == PTRACE_EVENT_EXEC) {
            execs++;
        } else if (event == 0) {
            signal_to_pass = WSTOPSIG(status);
        }
        ptrace(PTRACE_CONT, pid, NULL, (void *)(long)signal_to_pass);
    }

    char line[128];
    int length = snprintf(line, sizeof line, "%lld %ld %d\n", cpu_ns, peak_rss_kib, execs);
    int fd = open(output_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || write(fd, line, (size_t)length) != length) {
        fprintf(stderr, "bench-probe: cannot append to %s: %s\n", output_path, strerror(errno));
        return 2;
    }
    close(fd);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
