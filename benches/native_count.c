/* Counts the instructions one call of a function executes on this CPU, by single-stepping
 * the process with ptrace: what callgrind counts, but with the CPU's own instruction set
 * (callgrind reports a CPU without SHA extensions, so aws-lc runs its software SHA-256
 * there). Slow (one trap per instruction) but exact; a `rep` string instruction counts
 * once per iteration, as in callgrind.
 *
 *   native_count HEX_OFFSET PROGRAM ARGS...
 *
 * HEX_OFFSET is the function's address in the (position-independent) executable, as
 * `nm` prints it; the count covers the first call, from its first instruction to its
 * return. With TRACE=FILE set, the address (in the executable, as `nm` prints it) of
 * every instruction counted is written to FILE, one hex number per line; addresses
 * outside the executable (libc, the vDSO) come out as very large numbers. Used by
 * benches/native-instructions.sh and benches/native-profile.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(2);
}

/* The load address of `path`'s first mapping (file offset 0) in process `pid`. */
static unsigned long load_base(pid_t pid, const char *path) {
  char maps[64], line[4096], real[4096];
  if (!realpath(path, real)) die("realpath");
  snprintf(maps, sizeof maps, "/proc/%d/maps", pid);
  FILE *f = fopen(maps, "r");
  if (!f) die("maps");
  unsigned long start, offset;
  while (fgets(line, sizeof line, f)) {
    char *name = strchr(line, '/');
    if (!name) continue;
    name[strcspn(name, "\n")] = 0;
    if (sscanf(line, "%lx-%*x %*s %lx", &start, &offset) == 2 && offset == 0 &&
        strcmp(name, real) == 0) {
      fclose(f);
      return start;
    }
  }
  fprintf(stderr, "%s is not mapped\n", real);
  exit(2);
}

/* Resumes `pid` with `request` (PTRACE_CONT or PTRACE_SINGLESTEP) until it stops on a
 * trap, passing on any other signal it stops with. Exits with `ended` when the process
 * ends instead. */
static void resume_to_trap(pid_t pid, enum __ptrace_request request, const char *ended) {
  int sig = 0, status;
  for (;;) {
    if (ptrace(request, pid, NULL, (void *)(long)sig) < 0) die("resume");
    if (waitpid(pid, &status, 0) < 0) die("wait");
    if (!WIFSTOPPED(status)) {
      fprintf(stderr, "%s\n", ended);
      exit(2);
    }
    sig = WSTOPSIG(status) == SIGTRAP ? 0 : WSTOPSIG(status);
    if (sig == 0) return;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: native_count HEX_OFFSET PROGRAM ARGS...\n");
    return 2;
  }
  unsigned long offset = strtoul(argv[1], NULL, 16);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) die("traceme");
    unsetenv("TRACE"); /* the program runs with the environment it has without it */
    execv(argv[2], argv + 2);
    die("exec");
  }
  int status;
  if (waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status)) die("exec stop");
  unsigned long base = load_base(pid, argv[2]);
  unsigned long addr = base + offset;
  FILE *trace = NULL;
  if (getenv("TRACE") && !(trace = fopen(getenv("TRACE"), "w"))) die("trace");
  errno = 0;
  long orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)addr, NULL);
  if (errno) die("peek");
  if (ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)((orig & ~0xffL) | 0xcc)) < 0)
    die("poke");
  resume_to_trap(pid, PTRACE_CONT, "the function was never called");
  struct user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0) die("getregs");
  regs.rip = addr;
  if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) < 0) die("setregs");
  if (ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)orig) < 0) die("restore");
  unsigned long entry_sp = regs.rsp;
  unsigned long ret = (unsigned long)ptrace(PTRACE_PEEKDATA, pid, (void *)entry_sp, NULL);
  unsigned long count = 0, executed = addr;
  for (;;) {
    resume_to_trap(pid, PTRACE_SINGLESTEP, "the process ended inside the function");
    count++;
    if (trace) fprintf(trace, "%lx\n", executed - base);
    if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0) die("getregs");
    if (regs.rip == ret && regs.rsp > entry_sp) break;
    executed = regs.rip;
  }
  if (trace && fclose(trace) != 0) die("trace");
  printf("%lu\n", count);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return 0;
}
