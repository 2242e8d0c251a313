#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>

/* Old headers lack what newer kernels offer; the kernel of the day answers EINVAL or ENOSYS,
 * which the program reports like any other refusal. io_uring and userfaultfd structures are
 * spelled out below (include/uapi/linux/io_uring.h, userfaultfd.h) for the same reason: the
 * program must build on a distribution older than the feature. */
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif
#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif
/* @if iouring */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif
/* @endif iouring */
/* Headers older than the system call (memfd_create: 3.17, userfaultfd: 4.3): its number on the
 * common architectures; a kernel without it answers ENOSYS, which the program reports. */
#if !defined(__NR_memfd_create) && defined(__x86_64__)
#define __NR_memfd_create 319
#elif !defined(__NR_memfd_create) && defined(__aarch64__)
#define __NR_memfd_create 279
#elif !defined(__NR_memfd_create)
#error "this program needs __NR_memfd_create (Linux 3.17 headers or later)"
#endif
#if !defined(__NR_userfaultfd) && defined(__x86_64__)
#define __NR_userfaultfd 323
#elif !defined(__NR_userfaultfd) && defined(__aarch64__)
#define __NR_userfaultfd 282
#elif !defined(__NR_userfaultfd)
#error "this program needs __NR_userfaultfd (Linux 4.3 headers or later)"
#endif

_Static_assert(sizeof(void *) == 8, "the scenario's pages live above 4 GiB: build on a 64-bit system");

#define HELPER static __attribute__((unused))
#define ADDRESS_BASE 0x5C0000000000UL /* the scenario's pages: slot n at BASE + 2n pages */
#define HOLE 0x5BFFFFFFE000UL         /* the address of a page name never mapped */
#define HPAGE_SIZE (2UL << 20)        /* a huge page: slot n at HUGE_BASE + 4 MiB n */
#define HUGE_BASE (ADDRESS_BASE + (1UL << 39))
#define VALUE_WIDTH 33                /* a value is at most 32 characters, then NUL */
#define OBS_WIDTH 96
#define REAP_GRACE_MS 5000
/* @generated dimensions */
/* ------------------------------------------------------------------------------------------
 * What every process knows. A scenario process is a fork of this program serving one channel;
 * its page table (pg) is inherited by fork, as the kernel's page tables are. */
struct reply {
	int outcome; /* OUT_OK, OUT_SEGV, OUT_ERRNO (err), OUT_ERROR (text), OUT_REFUSED */
	int err;
	int pid;
	int status;
	int child; /* set in the new child of a fork: it answers on its own channel */
	int fd;    /* passed to the coordinator with SCM_RIGHTS, then closed here */
	int fd_kind;
	char value[OBS_WIDTH];
	char text[160];
	char frame[16]; /* a store's effect on its frame: "kept" or "replaced", when PFNs show */
};
/* OUT_SKIP: the kernel did not give what the step needs (a THP, a free hugetlb page); the
 * rest would be another experiment, so the program skips from this step on. */
enum { OUT_OK, OUT_SEGV, OUT_ERRNO, OUT_ERROR, OUT_REFUSED, OUT_SKIP };
enum { FD_NONE, FD_PIPE, FD_GUP, FD_CHANNEL, FD_UFFD };
enum { OP_STEP, OP_EXIT, OP_REAP };
struct request {
	int op;
	int step;
	int arg;
};

enum { K_FILE, K_MMAP, K_FORK, K_EXIT, K_TAKE, K_REF_READ, K_REF_WRITE, K_REF_RELEASE, K_SWAPOUT, K_PROC };
enum { TAKE_NONE, TAKE_VMSPLICE, TAKE_PIN, TAKE_IOURING };
/* One command of the scenario, as the generator wrote it out. */
struct step {
	const char *text;
	int kind, proc, ref, file; /* name ids (-1: none); ref is a fork's child too */
	int readonly, read, quiet;  /* quiet: a pageout of a file page, which no side observes */
	int needs;                  /* NEED_* bits: what the kernel must offer */
	int take_kind;
	const char *impossible;     /* why no program can perform it, or NULL */
	void (*run)(struct reply *r); /* what the process that performs it does */
};
struct era {
	const char *id;
	int merged;
	long since, until; /* major * 1000 + minor, inclusive; until -1: still today */
};

static size_t page_size;
static int my_sock = -1;  /* a scenario process's channel to the coordinator */
static int in_fd = -1;    /* an fd that came with the request (a file to map) */
static int uffd = -1;     /* this process's userfaultfd, once it asked for uffd-wp */
static uintptr_t uffd_registered[NPAGES + 1]; /* page name -> address registered with uffd */
static uintptr_t pg[NPAGES + 1]; /* page name -> address of its latest mmap, else HOLE */
/* page name -> length of that mapping: munmap, madvise, mprotect and uffd-wp act on all of it;
 * reads, writes and references touch its first page. */
static size_t pglen[NPAGES + 1];
/* page name -> populated when mapped (a huge page) and not stored to since: the simulator
 * faults such a page in at its first store, so what that store did to the frame is not told. */
static unsigned char pg_fresh[NPAGES + 1];

HELPER uintptr_t slot_addr(int slot)
{
	return ADDRESS_BASE + 2 * page_size * (uintptr_t)slot;
}

HELPER void fail(struct reply *r, int err)
{
	r->outcome = OUT_ERRNO;
	r->err = err;
}

HELPER void error_text(struct reply *r, const char *text)
{
	r->outcome = OUT_ERROR;
	snprintf(r->text, sizeof r->text, "%s", text);
}

HELPER void encode_value(char out[VALUE_WIDTH], const char *value)
{
	memset(out, 0, VALUE_WIDTH);
	memcpy(out, value, strnlen(value, VALUE_WIDTH - 1));
}

/* The bytes at the start of a page as a scenario value; NUL bytes (the zero page) are "0". */
HELPER void decode_value(char *out, const volatile char *page)
{
	size_t n = 0;
	while (n < VALUE_WIDTH - 1 && page[n] != 0) {
		char ch = page[n];
		out[n++] = (ch > ' ' && ch < 127) ? ch : '?';
	}
	out[n] = 0;
	if (n == 0)
		strcpy(out, "0");
}

/* The permissions ("rw-p", "r--s") of the VMA that holds addr, from the kernel's own table;
 * 0 when nothing is mapped there. A load or store the VMA forbids would kill the process with
 * SIGSEGV: asking first lets the program record SIGSEGV and keep the process, as the
 * simulator does. */
HELPER int vma_perms(uintptr_t addr, char perms[5])
{
	FILE *maps = fopen("/proc/self/maps", "re");
	char line[512];
	int found = 0;
	if (!maps)
		return 0;
	while (!found && fgets(line, sizeof line, maps)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) == 3 && start <= addr && addr < end)
			found = 1;
		while (!strchr(line, '\n') && fgets(line, sizeof line, maps))
			; /* the rest of a long line */
	}
	fclose(maps);
	return found;
}

/* The /proc/self/pagemap entry of the page at addr: bit 63 present, 62 swapped, 61 file. */
HELPER uint64_t pagemap(uintptr_t addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &entry, sizeof entry, (off_t)(addr / page_size * 8)) != sizeof entry)
			entry = 0;
		close(fd);
	}
	return entry;
}

/* @if uffd */
/* -- userfaultfd (include/uapi/linux/userfaultfd.h) ---------------------------------------- */
struct cow_uffdio_api {
	uint64_t api, features, ioctls;
};
struct cow_uffdio_range {
	uint64_t start, len;
};
struct cow_uffdio_register {
	struct cow_uffdio_range range;
	uint64_t mode, ioctls;
};
struct cow_uffdio_writeprotect {
	struct cow_uffdio_range range;
	uint64_t mode;
};
struct cow_uffd_msg {
	uint8_t event, reserved1;
	uint16_t reserved2;
	uint32_t reserved3;
	uint64_t flags, address;
	uint32_t ptid, pad;
};
#define COW_UFFD_API 0xAAULL
#define COW_UFFDIO_API _IOWR(0xAA, 0x3F, struct cow_uffdio_api)
#define COW_UFFDIO_REGISTER _IOWR(0xAA, 0x00, struct cow_uffdio_register)
#define COW_UFFDIO_WRITEPROTECT _IOWR(0xAA, 0x06, struct cow_uffdio_writeprotect)
#define COW_UFFDIO_REGISTER_MODE_WP (1ULL << 1)
#define COW_UFFDIO_WRITEPROTECT_MODE_WP (1ULL << 0)
#define COW_UFFD_EVENT_PAGEFAULT 0x12
#define COW_UFFD_PAGEFAULT_FLAG_WP (1ULL << 1)
#define COW_UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1ULL << 12)

/* @helper uffd_open */
/* A userfaultfd with the API handshake done, asking for write-protection of shared memory
 * (memfd pages) where the kernel offers it. No UFFD_USER_MODE_ONLY: faults raised by the
 * kernel itself (GUP for io_uring, /proc/self/mem) must be delivered too. */
HELPER int uffd_open(void)
{
	struct cow_uffdio_api api = { COW_UFFD_API, 0, 0 };
	int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (ioctl(fd, COW_UFFDIO_API, &api) < 0)
		goto fail;
	uint64_t offered = api.features;
	close(fd);
	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	api = (struct cow_uffdio_api){ COW_UFFD_API, offered & COW_UFFD_FEATURE_WP_HUGETLBFS_SHMEM, 0 };
	if (ioctl(fd, COW_UFFDIO_API, &api) < 0)
		goto fail;
	return fd;
fail:;
	int err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* @helper uffd_writeprotect */
HELPER int uffd_writeprotect(int fd, uintptr_t addr, size_t len, int on)
{
	struct cow_uffdio_writeprotect wp = { { addr, len }, on ? COW_UFFDIO_WRITEPROTECT_MODE_WP : 0 };
	return ioctl(fd, COW_UFFDIO_WRITEPROTECT, &wp);
}

/* @helper uffd_register */
HELPER int uffd_register(int fd, uintptr_t addr, size_t len)
{
	struct cow_uffdio_register reg = { { addr, len }, COW_UFFDIO_REGISTER_MODE_WP, 0 };
	return ioctl(fd, COW_UFFDIO_REGISTER, &reg);
}

/* @endif uffd */
/* @if iouring */
/* -- io_uring (include/uapi/linux/io_uring.h), no liburing ----------------------------------- */
struct cow_sqring_offsets {
	uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
	uint64_t user_addr;
};
struct cow_cqring_offsets {
	uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
	uint64_t user_addr;
};
struct cow_uring_params {
	uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd;
	uint32_t resv[3];
	struct cow_sqring_offsets sq_off;
	struct cow_cqring_offsets cq_off;
};
struct cow_sqe {
	uint8_t opcode, flags;
	uint16_t ioprio;
	int32_t fd;
	uint64_t off, addr;
	uint32_t len, rw_flags;
	uint64_t user_data;
	uint16_t buf_index, personality;
	int32_t splice_fd_in;
	uint64_t addr3, pad;
};
struct cow_cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};
_Static_assert(sizeof(struct cow_uring_params) == 120, "io_uring_params layout");
_Static_assert(sizeof(struct cow_sqe) == 64, "io_uring_sqe layout");
_Static_assert(sizeof(struct cow_cqe) == 16, "io_uring_cqe layout");
#define COW_IORING_OFF_SQ_RING 0ULL
#define COW_IORING_OFF_CQ_RING 0x8000000ULL
#define COW_IORING_OFF_SQES 0x10000000ULL
#define COW_IORING_FEAT_SINGLE_MMAP 1U
#define COW_IORING_ENTER_GETEVENTS 1U
#define COW_IORING_REGISTER_BUFFERS 0
#define COW_IORING_UNREGISTER_BUFFERS 1
#define COW_IORING_OP_READ_FIXED 4
#define COW_IORING_OP_WRITE_FIXED 5

/* One ring with one registered fixed buffer of one page. Its mappings are MADV_DONTFORK: a
 * forked scenario process must not keep the ring, and with it the pin, alive. */
struct ring {
	int fd, scratch;
	uintptr_t addr;
	void *maps[3];
	size_t sizes[3];
	uint32_t *sq_tail, *sq_array, sq_mask, *cq_head, *cq_tail, cq_mask;
	struct cow_sqe *sqes;
	struct cow_cqe *cqes;
};
static struct ring rings[NNAMES + 1];

/* @helper ring_close */
HELPER void ring_close(struct ring *ring)
{
	/* IORING_UNREGISTER_BUFFERS unpins before it returns; closing the ring alone would leave
	 * the unpin to a workqueue (io_ring_exit_work), and a fork right after the release would
	 * still find the page pinned. */
	if (ring->fd >= 0)
		syscall(__NR_io_uring_register, ring->fd, COW_IORING_UNREGISTER_BUFFERS, NULL, 0);
	for (int i = 0; i < 3; i++)
		if (ring->maps[i])
			munmap(ring->maps[i], ring->sizes[i]);
	if (ring->scratch >= 0)
		close(ring->scratch);
	if (ring->fd >= 0)
		close(ring->fd);
	memset(ring, 0, sizeof *ring);
	ring->fd = ring->scratch = -1;
}

/* @helper ring_map */
HELPER void *ring_map(struct ring *ring, int i, size_t size, unsigned long long off)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring->fd, (off_t)off);
	if (p == MAP_FAILED)
		return NULL;
	ring->maps[i] = p;
	ring->sizes[i] = size;
	madvise(p, size, MADV_DONTFORK);
	return p;
}

/* @helper ring_open */
/* io_uring_setup, the ring mappings, then IORING_REGISTER_BUFFERS: pin_user_pages with
 * FOLL_WRITE|FOLL_LONGTERM on the page, from this process's mm. Returns 0 or an errno. */
HELPER int ring_open(struct ring *ring, uintptr_t addr)
{
	struct cow_uring_params p;
	memset(&p, 0, sizeof p);
	memset(ring, 0, sizeof *ring);
	ring->scratch = -1;
	ring->addr = addr;
	ring->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (ring->fd < 0)
		return errno;
	size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
	size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct cow_cqe);
	char *sq, *cq;
	if (p.features & COW_IORING_FEAT_SINGLE_MMAP) {
		sq_size = cq_size = sq_size > cq_size ? sq_size : cq_size;
		cq = sq = ring_map(ring, 0, sq_size, COW_IORING_OFF_SQ_RING);
	} else {
		sq = ring_map(ring, 0, sq_size, COW_IORING_OFF_SQ_RING);
		cq = ring_map(ring, 1, cq_size, COW_IORING_OFF_CQ_RING);
	}
	ring->sqes = ring_map(ring, 2, p.sq_entries * sizeof(struct cow_sqe), COW_IORING_OFF_SQES);
	if (!sq || !cq || !ring->sqes)
		goto fail;
	ring->sq_tail = (uint32_t *)(sq + p.sq_off.tail);
	ring->sq_mask = *(uint32_t *)(sq + p.sq_off.ring_mask);
	ring->sq_array = (uint32_t *)(sq + p.sq_off.array);
	ring->cq_head = (uint32_t *)(cq + p.cq_off.head);
	ring->cq_tail = (uint32_t *)(cq + p.cq_off.tail);
	ring->cq_mask = *(uint32_t *)(cq + p.cq_off.ring_mask);
	ring->cqes = (struct cow_cqe *)(cq + p.cq_off.cqes);
	struct iovec iov = { (void *)addr, page_size };
	if (syscall(__NR_io_uring_register, ring->fd, COW_IORING_REGISTER_BUFFERS, &iov, 1) < 0)
		goto fail;
	ring->scratch = (int)syscall(__NR_memfd_create, "cowlab-iouring", MFD_CLOEXEC);
	if (ring->scratch < 0 || ftruncate(ring->scratch, (off_t)page_size) < 0)
		goto fail;
	return 0;
fail:;
	int err = errno;
	ring_close(ring);
	return err;
}

/* @helper ring_submit */
/* One fixed-buffer operation between the page and the scratch file; returns 0 or an errno. */
HELPER int ring_submit(struct ring *ring, int opcode, uint32_t len)
{
	uint32_t tail = *ring->sq_tail, index = tail & ring->sq_mask;
	struct cow_sqe *sqe = &ring->sqes[index];
	memset(sqe, 0, sizeof *sqe);
	sqe->opcode = (uint8_t)opcode;
	sqe->fd = ring->scratch;
	sqe->addr = ring->addr;
	sqe->len = len;
	sqe->user_data = tail + 1;
	ring->sq_array[index] = index;
	__atomic_store_n(ring->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring->fd, 1, 1, COW_IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return errno;
	uint32_t head = *ring->cq_head;
	if (head == __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE))
		return EIO;
	int res = ring->cqes[head & ring->cq_mask].res;
	__atomic_store_n(ring->cq_head, head + 1, __ATOMIC_RELEASE);
	return res < 0 ? -res : 0;
}

/* @endif iouring */
/* @if gup */
/* -- gup_test (mm/gup_test.h): the only way to hold a FOLL_PIN of one's choice ---------------- */
struct cow_pin_longterm_test {
	uint64_t addr, size;
	uint32_t flags;
};
#define GUP_TEST_PATH "/sys/kernel/debug/gup_test"
#define COW_PIN_LONGTERM_TEST_START _IOW('g', 7, struct cow_pin_longterm_test)
#define COW_PIN_LONGTERM_TEST_STOP _IO('g', 8)
#define COW_PIN_LONGTERM_TEST_READ _IOW('g', 9, uint64_t)
#define COW_PIN_LONGTERM_TEST_FLAG_USE_WRITE 1U
#define COW_PIN_LONGTERM_TEST_FLAG_USE_FAST 2U

/* @endif gup */
/* -- the coordinator's side of the file declarations ------------------------------------------ */
static int files[NNAMES + 1]; /* file name -> memfd held by the coordinator, or -1 */

/* Close every inherited fd but stdio and the channel: a new scenario process must not keep
 * another process's pipes (page references!), pins, rings or sockets alive. */
HELPER void close_fds_but_channel(void)
{
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		int fd = atoi(entry->d_name);
		if (fd > 2 && fd != my_sock && fd != dirfd(dir))
			close(fd);
	}
	closedir(dir);
}

/* @helper file_decl */
/* `file F VALUE`: a memfd whose one page starts with VALUE, held by the coordinator. */
HELPER void file_decl(struct reply *r, int name, const char *value)
{
	char bytes[VALUE_WIDTH];
	if (files[name] >= 0)
		return error_text(r, "name in use");
	int fd = (int)syscall(__NR_memfd_create, "cowlab-file", MFD_CLOEXEC);
	if (fd < 0 && errno == ENOSYS) { /* before 3.17: an unlinked file of /tmp instead */
		char path[] = "/tmp/cowlab-file-XXXXXX";
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return fail(r, errno);
	encode_value(bytes, value);
	if (pwrite(fd, bytes, VALUE_WIDTH, 0) != VALUE_WIDTH || ftruncate(fd, (off_t)page_size) < 0) {
		fail(r, errno);
		close(fd);
		return;
	}
	files[name] = fd;
}

/* @helper map_anon */
/* A private anonymous page at its own address (MAP_FIXED_NOREPLACE refuses to clobber). */
HELPER void map_anon(struct reply *r, int page, int slot)
{
	char perms[5];
	if (pg[page] != HOLE && vma_perms(pg[page], perms))
		return error_text(r, "already mapped"); /* the scenario language's rule */
	void *want = (void *)slot_addr(slot);
	void *got = mmap(want, page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (got == MAP_FAILED)
		return fail(r, errno);
	if (got != want) { /* a kernel before 4.17 took MAP_FIXED_NOREPLACE as a hint */
		munmap(got, page_size);
		return fail(r, EEXIST);
	}
	pg[page] = (uintptr_t)want;
}

/* @helper map_file */
/* A page of a file: the coordinator opened it (O_RDONLY for `ro`) and passed the fd along. */
HELPER void map_file(struct reply *r, int page, int slot, int shared, int readonly)
{
	char perms[5];
	if (pg[page] != HOLE && vma_perms(pg[page], perms))
		return error_text(r, "already mapped");
	void *want = (void *)slot_addr(slot);
	int prot = readonly ? PROT_READ : PROT_READ | PROT_WRITE;
	int kind = shared ? MAP_SHARED : MAP_PRIVATE;
	void *got = mmap(want, page_size, prot, kind | MAP_FIXED_NOREPLACE, in_fd, 0);
	if (got == MAP_FAILED)
		return fail(r, errno);
	if (got != want) {
		munmap(got, page_size);
		return fail(r, EEXIST);
	}
	pg[page] = (uintptr_t)want;
}

/* @if huge */
/* @helper anon_huge_kb */
/* AnonHugePages of the VMA that holds addr, in kB (-1: no such VMA): /proc/self/smaps counts
 * only anonymous THPs mapped by a PMD there. */
HELPER long anon_huge_kb(uintptr_t addr)
{
	FILE *smaps = fopen("/proc/self/smaps", "re");
	char line[512];
	int inside = 0;
	long kb = -1;
	if (!smaps)
		return -1;
	while (kb < 0 && fgets(line, sizeof line, smaps)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx", &start, &end) == 2)
			inside = start <= addr && addr < end; /* a VMA's first line */
		else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) != 1)
			kb = -1;
	}
	fclose(smaps);
	return kb;
}

/* @helper thp_folio */
/* Whether the page at addr belongs to a THP folio (KPF_THP, bit 22 of /proc/kpageflags), or -1
 * when this process may not read PFNs (pagemap shows them to CAP_SYS_ADMIN only). */
HELPER int thp_folio(uintptr_t addr)
{
	uint64_t entry = pagemap(addr), pfn = entry & ((1ULL << 55) - 1), flags = 0;
	if (!(entry >> 63 & 1) || pfn == 0)
		return -1;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, &flags, sizeof flags, (off_t)(pfn * 8));
	close(fd);
	return n == sizeof flags ? (int)(flags >> 22 & 1) : -1;
}

/* @helper populate */
/* Fault the whole huge page in by writing, as cow.c does (a read fault would map the huge zero
 * page): MADV_POPULATE_WRITE since 5.14, a store of the zero it already holds before that. */
HELPER void populate(void *addr)
{
	if (madvise(addr, HPAGE_SIZE, MADV_POPULATE_WRITE) < 0)
		*(volatile char *)addr = 0;
}

HELPER void skip_text(struct reply *r, const char *text)
{
	r->outcome = OUT_SKIP;
	snprintf(r->text, sizeof r->text, "%s", text);
}

/* @helper map_thp */
/* A PMD-mapped transparent huge page: a 2 MiB-aligned anonymous mapping with MADV_HUGEPAGE,
 * populated. Whether the kernel really maps a THP with one PMD is checked, not assumed. */
HELPER void map_thp(struct reply *r, int page, int slot)
{
	char perms[5], why[160];
	if (pg[page] != HOLE && vma_perms(pg[page], perms))
		return error_text(r, "already mapped");
	void *want = (void *)(HUGE_BASE + 2 * HPAGE_SIZE * (uintptr_t)slot);
	void *got = mmap(want, HPAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (got == MAP_FAILED || got != want) {
		snprintf(why, sizeof why, "the kernel could not map the huge page (%s)",
			 got == MAP_FAILED ? strerror(errno) : "address taken");
		if (got != MAP_FAILED)
			munmap(got, HPAGE_SIZE);
		return skip_text(r, why);
	}
	if (madvise(want, HPAGE_SIZE, MADV_HUGEPAGE) < 0) {
		snprintf(why, sizeof why, "THP not available (MADV_HUGEPAGE: %s)", strerror(errno));
		munmap(want, HPAGE_SIZE);
		return skip_text(r, why);
	}
	populate(want);
	long kb = anon_huge_kb((uintptr_t)want);
	if (kb < (long)(HPAGE_SIZE >> 10)) {
		snprintf(why, sizeof why,
			 "the kernel did not map a PMD-mapped THP (AnonHugePages %ld kB after "
			 "MADV_HUGEPAGE and populating)", kb);
		munmap(want, HPAGE_SIZE);
		return skip_text(r, why);
	}
	pg[page] = (uintptr_t)want;
	pglen[page] = HPAGE_SIZE;
	pg_fresh[page] = 1;
}

/* @helper map_hugetlb */
/* A private 2 MiB hugetlb page, from the pool the administrator sized (vm.nr_hugepages): the
 * program never changes it, and skips when it holds no free page. */
HELPER void map_hugetlb(struct reply *r, int page, int slot)
{
	char perms[5], why[160];
	if (pg[page] != HOLE && vma_perms(pg[page], perms))
		return error_text(r, "already mapped");
	void *want = (void *)(HUGE_BASE + 2 * HPAGE_SIZE * (uintptr_t)slot);
	void *got = mmap(want, HPAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_HUGETLB | MAP_HUGE_2MB,
			 -1, 0);
	if (got == MAP_FAILED || got != want) {
		snprintf(why, sizeof why,
			 "no free 2 MiB hugetlb page (%s; as root: echo 8 > /proc/sys/vm/nr_hugepages)",
			 got == MAP_FAILED ? strerror(errno) : "address taken");
		if (got != MAP_FAILED)
			munmap(got, HPAGE_SIZE);
		return skip_text(r, why);
	}
	populate(want);
	pg[page] = (uintptr_t)want;
	pglen[page] = HPAGE_SIZE;
	pg_fresh[page] = 1;
}

/* @helper do_pte_map */
/* What cow.c does for a "PTE-mapped THP": change the protection of the second subpage and
 * change it back. The PMD is split (__split_huge_pmd); the folio stays whole. */
HELPER void do_pte_map(struct reply *r, int page)
{
	char perms[5] = "rw-p";
	int mapped = vma_perms(pg[page], perms);
	int prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0);
	/* A 4 KiB mapping has no PMD to split: nothing to do, as in the simulator and the probe
	 * (the trick would hit the gap beside it and fail with ENOMEM). */
	if (mapped && pglen[page] != HPAGE_SIZE)
		return;
	/* mprotect() to the protection the VMA already has would change (and split) nothing. */
	int other = prot != PROT_READ ? PROT_READ : PROT_NONE;
	void *second = (void *)(pg[page] + page_size);
	if (mprotect(second, page_size, other) < 0 || mprotect(second, page_size, prot) < 0)
		return fail(r, errno); /* unmapped: ENOMEM; hugetlb splits nowhere: EINVAL */
	if (!mapped)
		return;
	if (anon_huge_kb(pg[page]) >= (long)(HPAGE_SIZE >> 10))
		return skip_text(r, "the THP is still PMD-mapped after the mprotect() trick");
	if (thp_folio(pg[page]) == 0)
		return skip_text(r, "the kernel split the THP instead of remapping it with PTEs");
}
/* @endif huge */

/* @helper do_read */
/* A load: a read fault maps the shared zero page for a never-written anonymous page. */
HELPER void do_read(struct reply *r, int page)
{
	char perms[5];
	if (!vma_perms(pg[page], perms) || perms[0] != 'r')
		return (void)(r->outcome = OUT_SEGV);
	decode_value(r->value, (const volatile char *)pg[page]);
}

/* @helper write_frame */
/* What a store did to the frame behind its page, from /proc/self/pagemap around it (as the
 * probe's --frames): "kept" (the same PFN: the page was writable, or the fault reused it) or
 * "replaced" (a copy on write). Nothing when PFNs are hidden (pagemap shows them to
 * CAP_SYS_ADMIN only), nor for a first touch or a swap-in: nothing was mapped before. */
HELPER void write_frame(struct reply *r, int page, uint64_t before, uint64_t after)
{
	const uint64_t pfn = (1ULL << 55) - 1;
	int fresh = pg_fresh[page];
	pg_fresh[page] = 0;
	if (!(after & pfn) || !(before >> 63 & 1) || fresh)
		return;
	snprintf(r->frame, sizeof r->frame, "%s", (before & pfn) == (after & pfn) ? "kept" : "replaced");
}

/* @helper do_write */
/* A store: a write fault, where the kernel decides to copy the page or reuse it. */
HELPER void do_write(struct reply *r, int page, const char *value)
{
	char perms[5], bytes[VALUE_WIDTH];
	if (!vma_perms(pg[page], perms) || perms[1] != 'w')
		return (void)(r->outcome = OUT_SEGV);
	encode_value(bytes, value);
	uint64_t before = pagemap(pg[page]);
	volatile char *dst = (volatile char *)pg[page];
	for (int i = 0; i < VALUE_WIDTH; i++)
		dst[i] = bytes[i];
	write_frame(r, page, before, pagemap(pg[page]));
}

/* @if forcewrite */
/* @helper do_forcewrite */
/* A write through /proc/self/mem: access_remote_vm() -> GUP with FOLL_FORCE|FOLL_WRITE, which
 * may write into a mapping without VM_WRITE (a private file mapping gets an anonymous copy). */
HELPER void do_forcewrite(struct reply *r, int page, const char *value)
{
	char bytes[VALUE_WIDTH];
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(r, errno);
	encode_value(bytes, value);
	if (pwrite(fd, bytes, VALUE_WIDTH, (off_t)pg[page]) < 0)
		fail(r, errno);
	close(fd);
}
/* @endif forcewrite */

/* @helper do_munmap */
HELPER void do_munmap(struct reply *r, int page)
{
	if (munmap((void *)pg[page], pglen[page]) < 0)
		fail(r, errno);
}

/* @helper do_madvise */
/* madvise(); for MADV_PAGEOUT, what it did, from /proc/self/pagemap: it may decline a page
 * (shared, pinned, the zero page, not on the LRU yet), and that is an observation too. */
HELPER void do_madvise(struct reply *r, int page, int advice)
{
	uint64_t before = pagemap(pg[page]);
	if (madvise((void *)pg[page], pglen[page], advice) < 0)
		return fail(r, errno);
	if (advice != MADV_PAGEOUT || ((before >> 63 & 1) && (before >> 61 & 1)))
		return; /* a page-cache page leaves the page table however it goes: say nothing */
	uint64_t entry = pagemap(pg[page]);
	if (entry >> 62 & 1)
		strcpy(r->value, "swapped out");
	else if (entry >> 63 & 1)
		strcpy(r->value, "stays resident");
	else
		strcpy(r->value, "nothing to page out");
}

/* @helper do_mprotect */
HELPER void do_mprotect(struct reply *r, int page, int writable)
{
	if (mprotect((void *)pg[page], pglen[page], PROT_READ | (writable ? PROT_WRITE : 0)) < 0)
		fail(r, errno);
}

/* @if softdirty */
/* @helper do_clear_softdirty */
/* Writing 4 to clear_refs write-protects every PTE to track soft-dirty bits. */
HELPER void do_clear_softdirty(struct reply *r)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(r, errno);
	if (write(fd, "4", 1) != 1)
		fail(r, errno);
	close(fd);
}
/* @endif softdirty */

/* @if uffd */
/* @helper do_uffd_wp */
/* Register the page with a userfaultfd (once) and write-protect it, or lift the protection.
 * The coordinator gets a copy of the userfaultfd: it resolves each write-protect fault the
 * way a real monitor does (by lifting the protection of that page) and counts it. */
HELPER void do_uffd_wp(struct reply *r, int page, int on)
{
	uintptr_t *registered = uffd_registered;
	char perms[5];
	int mapped = vma_perms(pg[page], perms);
	if (uffd < 0) {
		uffd = uffd_open();
		if (uffd < 0)
			return fail(r, errno);
		r->fd = dup(uffd);
		r->fd_kind = FD_UFFD;
	}
	if (on && (registered[page] != pg[page] || !mapped)) {
		if (uffd_register(uffd, pg[page], pglen[page]) < 0)
			return fail(r, errno);
		registered[page] = pg[page];
	}
	/* Lifting the protection of a mapped page never registered has nothing to do. */
	if ((registered[page] == pg[page] || !mapped) &&
	    uffd_writeprotect(uffd, pg[page], pglen[page], on) < 0)
		fail(r, errno);
}
/* @endif uffd */

/* @helper do_vmsplice */
/* vmsplice() the page into a new pipe: the pipe holds a read-only FOLL_GET reference. The read
 * end goes to the coordinator; this process keeps nothing, so a later fork cannot duplicate
 * the reference. */
HELPER void do_vmsplice(struct reply *r, int page)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return fail(r, errno);
	struct iovec iov = { (void *)pg[page], page_size };
	if (vmsplice(fds[1], &iov, 1, 0) < 0) {
		fail(r, errno);
		close(fds[0]);
	} else {
		r->fd = fds[0];
		r->fd_kind = FD_PIPE;
	}
	close(fds[1]);
}

/* @if gup */
/* @helper do_pin */
/* A long-term FOLL_PIN through gup_test (PIN_LONGTERM_TEST_START: pin_user_pages(_fast) with
 * FOLL_LONGTERM, FOLL_WRITE on request). The fd that holds the pin goes to the coordinator. */
HELPER void do_pin(struct reply *r, int page, int write, int fast)
{
	int fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(r, errno);
	struct cow_pin_longterm_test args = { pg[page], page_size, 0 };
	args.flags = (write ? COW_PIN_LONGTERM_TEST_FLAG_USE_WRITE : 0) |
		     (fast ? COW_PIN_LONGTERM_TEST_FLAG_USE_FAST : 0);
	if (ioctl(fd, COW_PIN_LONGTERM_TEST_START, &args) < 0) {
		fail(r, errno);
		close(fd);
		return;
	}
	r->fd = fd;
	r->fd_kind = FD_GUP;
}
/* @endif gup */

/* @if iouring */
/* @helper do_iouring */
/* Register the page as an io_uring fixed buffer (FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM). The ring
 * stays in this process: io_uring fds cannot be passed over Unix sockets since Linux 6.7. */
HELPER void do_iouring(struct reply *r, int page, int ref)
{
	int err = ring_open(&rings[ref], pg[page]);
	if (err)
		fail(r, err);
}

/* @helper ring_read */
/* What the device sees: IORING_OP_WRITE_FIXED of the buffer into a scratch file, read back. */
HELPER void ring_read(struct reply *r, int ref)
{
	char buf[VALUE_WIDTH];
	int err = ring_submit(&rings[ref], COW_IORING_OP_WRITE_FIXED, (uint32_t)page_size);
	if (err)
		return fail(r, err);
	if (pread(rings[ref].scratch, buf, VALUE_WIDTH, 0) != VALUE_WIDTH)
		return fail(r, errno ? errno : EIO);
	decode_value(r->value, buf);
}

/* @helper ring_write */
/* The device writes into memory: IORING_OP_READ_FIXED from a scratch file holding VALUE. The
 * kernel copies into the pinned page, not through any page table. */
HELPER void ring_write(struct reply *r, int ref, const char *value)
{
	char bytes[VALUE_WIDTH];
	encode_value(bytes, value);
	if (pwrite(rings[ref].scratch, bytes, VALUE_WIDTH, 0) != VALUE_WIDTH)
		return fail(r, errno);
	int err = ring_submit(&rings[ref], COW_IORING_OP_READ_FIXED, VALUE_WIDTH);
	if (err)
		fail(r, err);
}

/* @helper ring_release */
HELPER void ring_release(struct reply *r, int ref)
{
	(void)r;
	ring_close(&rings[ref]);
}
/* @endif iouring */

/* @helper pipe_read */
/* Read what the pipe holds without consuming it: tee() into a scratch pipe, read that. The
 * pipe keeps its page references, and the bytes are the page's current contents. */
HELPER void pipe_read(struct reply *r, int pipe_fd)
{
	int scratch[2];
	char buf[VALUE_WIDTH + 1];
	if (pipe2(scratch, O_CLOEXEC) < 0)
		return fail(r, errno);
	ssize_t n = tee(pipe_fd, scratch[1], page_size, SPLICE_F_NONBLOCK);
	if (n < 0) {
		fail(r, errno);
	} else {
		ssize_t got = read(scratch[0], buf, n < VALUE_WIDTH ? (size_t)n : VALUE_WIDTH);
		buf[got > 0 ? got : 0] = 0;
		decode_value(r->value, buf);
	}
	close(scratch[0]);
	close(scratch[1]);
}

/* @if gup */
/* @helper gup_read */
/* PIN_LONGTERM_TEST_READ: the kernel copies the pinned page as a device would see it now. */
HELPER void gup_read(struct reply *r, int gup_fd)
{
	char *buf = calloc(1, page_size);
	uint64_t dest = (uintptr_t)buf;
	if (!buf)
		return fail(r, ENOMEM);
	if (ioctl(gup_fd, COW_PIN_LONGTERM_TEST_READ, &dest) < 0)
		fail(r, errno);
	else
		decode_value(r->value, buf);
	free(buf);
}

/* @helper gup_release */
/* PIN_LONGTERM_TEST_STOP unpins; closing the file would unpin too. */
HELPER void gup_release(int gup_fd)
{
	ioctl(gup_fd, COW_PIN_LONGTERM_TEST_STOP, NULL);
	close(gup_fd);
}
/* @endif gup */

/* @helper do_fork */
/* fork(): the child becomes the scenario's new process, answering on a channel of its own.
 * It keeps none of its parent's references: the userfaultfd (fork drops VM_UFFD_WP from the
 * child's VMAs anyway, without UFFD_FEATURE_EVENT_FORK), the rings (whose mappings were
 * MADV_DONTFORK) and every other inherited fd. */
HELPER void do_fork(struct reply *r)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(r, errno);
	pid_t pid = fork();
	if (pid < 0) {
		fail(r, errno);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		close(my_sock);
		my_sock = sv[1];
		uffd = -1;
		memset(uffd_registered, 0, sizeof uffd_registered); /* registered with that uffd */
		/* @if iouring */
		for (int i = 0; i <= NNAMES; i++) {
			memset(&rings[i], 0, sizeof rings[i]);
			rings[i].fd = rings[i].scratch = -1;
		}
		/* @endif iouring */
		close_fds_but_channel();
		r->child = 1;
		return;
	}
	close(sv[1]);
	r->pid = pid;
	r->fd = sv[0];
	r->fd_kind = FD_CHANNEL;
}
/* @generated scenario */
/* ------------------------------------------------------------------------------------------
 * The coordinator: this program's first process. It runs the scenario one command at a time,
 * asking the process that performs each one, and holds the references a process handed over
 * (pipes, gup_test pins) and the files. It is a child subreaper, so the orphans of exited
 * scenario processes come back to it, and it reaps every process and releases every fd on
 * every way out: the end, a skip, a timeout, a process that died. */
struct proc {
	int alive;
	pid_t pid;
	int sock;
	pid_t reaper; /* who must waitpid() it: its parent, or the coordinator once orphaned */
	int uffd;     /* the coordinator's copy of its userfaultfd, or -1 */
};
enum { REF_NONE, REF_PIPE, REF_GUP, REF_RING };
struct ref {
	int kind;
	int owner;
	int fd;
};
static struct proc procs[NNAMES + 1];
static struct ref refs[NNAMES + 1];
static struct timespec deadline;
static int userfaults;
static char skip_reason[256];
static int skip_step; /* the first step not run, 0 when every step ran */
/* per step: what a read or a call showed, the userfaults, what a store did to the frame */
static char observed[NSTEPS + 1][3][OBS_WIDTH];

static int name_in_use(int name)
{
	return procs[name].alive || refs[name].kind != REF_NONE || files[name] >= 0;
}

static long remaining_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
}

__attribute__((format(printf, 2, 3))) static void skip(int step, const char *fmt, ...)
{
	va_list args;
	if (skip_step)
		return;
	skip_step = step;
	va_start(args, fmt);
	vsnprintf(skip_reason, sizeof skip_reason, fmt, args);
	va_end(args);
}

static int send_msg(int sock, const void *buf, size_t len, int fd)
{
	struct iovec iov = { (void *)buf, len };
	union {
		char bytes[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&control, 0, sizeof control);
		msg.msg_control = control.bytes;
		msg.msg_controllen = sizeof control.bytes;
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static ssize_t recv_msg(int sock, void *buf, size_t len, int *fd)
{
	struct iovec iov = { buf, len };
	union {
		char bytes[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
			      .msg_controllen = sizeof control.bytes };
	*fd = -1;
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof *fd);
	return n;
}

/* A scenario process: perform each request on its own address space, answer what happened. */
static void serve(void)
{
	for (;;) {
		struct request q;
		struct reply r;
		if (recv_msg(my_sock, &q, sizeof q, &in_fd) != sizeof q)
			_exit(0); /* the coordinator is gone */
		memset(&r, 0, sizeof r);
		r.fd = -1;
		if (q.op == OP_STEP && q.step >= 1 && q.step <= NSTEPS && steps[q.step].run)
			steps[q.step].run(&r);
		else if (q.op == OP_REAP && waitpid(q.arg, &r.status, 0) < 0)
			r.status = -1;
		if (in_fd >= 0)
			close(in_fd);
		in_fd = -1;
		if (r.child)
			continue; /* the new child of a fork: its parent answered for it */
		send_msg(my_sock, &r, sizeof r, r.fd);
		if (r.fd >= 0)
			close(r.fd);
		if (q.op == OP_EXIT)
			_exit(0);
	}
}

/* @if uffd */
/* Resolve the write-protect faults of any scenario process: count them, lift the protection of
 * the faulting page, which wakes the writer. */
static void handle_userfaults(int fd)
{
	struct cow_uffd_msg msg;
	while (read(fd, &msg, sizeof msg) == sizeof msg) {
		if (msg.event != COW_UFFD_EVENT_PAGEFAULT || !(msg.flags & COW_UFFD_PAGEFAULT_FLAG_WP))
			continue;
		userfaults++;
		uffd_writeprotect(fd, msg.address & ~(uint64_t)(page_size - 1), page_size, 0);
	}
}
/* @endif uffd */

static void reap(int name, int step);

/* Send a request and wait for the answer, never past the deadline; 0 or -1 (then skipping). */
static int ask(int name, int step, int op, int arg, int fd_out, struct reply *r)
{
	struct request q = { op, step, arg };
	memset(r, 0, sizeof *r);
	r->fd = -1;
	if (send_msg(procs[name].sock, &q, sizeof q, fd_out) < 0)
		goto died;
	for (;;) {
		struct pollfd fds[NNAMES + 2];
		int n = 0;
		fds[n++] = (struct pollfd){ procs[name].sock, POLLIN, 0 };
		for (int i = 0; i <= NNAMES; i++)
			if (procs[i].alive && procs[i].uffd >= 0)
				fds[n++] = (struct pollfd){ procs[i].uffd, POLLIN, 0 };
		long wait = remaining_ms();
		if (wait <= 0 || poll(fds, (nfds_t)n, (int)wait) == 0) {
			skip(step, "timed out at step %d", step);
			return -1;
		}
		/* @if uffd */
		for (int i = 1; i < n; i++)
			if (fds[i].revents & POLLIN)
				handle_userfaults(fds[i].fd);
		/* @endif uffd */
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			int fd = -1;
			if (recv_msg(procs[name].sock, r, sizeof *r, &fd) != sizeof *r)
				goto died;
			r->fd = fd;
			return 0;
		}
	}
died:
	skip(step, "process %s died unexpectedly", names[name]);
	reap(name, step);
	return -1;
}

static void wait_for(pid_t pid)
{
	while (waitpid(pid, NULL, WNOHANG) == 0 && remaining_ms() > 0) {
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
}

static void reap(int name, int step)
{
	struct proc *p = &procs[name];
	struct reply r;
	if (!p->alive)
		return;
	close(p->sock);
	if (p->uffd >= 0)
		close(p->uffd);
	p->alive = 0;
	p->uffd = -1;
	for (int i = 0; i <= NNAMES; i++)
		if (procs[i].alive && procs[i].reaper == p->pid)
			procs[i].reaper = getpid(); /* orphans reparent to the nearest subreaper: us */
	if (p->reaper == getpid()) {
		wait_for(p->pid);
		return;
	}
	for (int i = 0; i <= NNAMES; i++)
		if (procs[i].alive && procs[i].pid == p->reaper) {
			ask(i, step, OP_REAP, p->pid, -1, &r);
			return;
		}
}

static void release(int ref)
{
	/* @if gup */
	if (refs[ref].kind == REF_GUP)
		gup_release(refs[ref].fd);
	/* @endif gup */
	if (refs[ref].kind != REF_GUP && refs[ref].fd >= 0)
		close(refs[ref].fd);
	refs[ref] = (struct ref){ REF_NONE, -1, -1 };
}

static void spawn_root(int name)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		my_sock = sv[1];
		close_fds_but_channel();
		serve();
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return;
	}
	procs[name] = (struct proc){ 1, pid, sv[0], getpid(), -1 };
}

static void take_fd(struct reply *r, int name)
{
	if (r->fd < 0)
		return;
	if (r->fd_kind == FD_UFFD && procs[name].uffd < 0) {
		procs[name].uffd = r->fd;
		r->fd = -1;
	}
}

/* One command: who performs it, and what the coordinator keeps of it. */
static void run_step(int k, struct reply *r)
{
	const struct step *s = &steps[k];
	memset(r, 0, sizeof *r);
	r->fd = -1;
	if (s->kind == K_FILE) {
		s->run(r);
		return;
	}
	if (s->kind == K_REF_READ || s->kind == K_REF_WRITE || s->kind == K_REF_RELEASE) {
		struct ref *ref = &refs[s->ref];
		if (ref->kind == REF_NONE)
			return error_text(r, "no such reference");
		if (ref->kind == REF_RING) {
			if (ask(ref->owner, k, OP_STEP, 0, -1, r) == 0 && s->kind == K_REF_RELEASE)
				*ref = (struct ref){ REF_NONE, -1, -1 };
			return;
		}
		if (s->kind == K_REF_RELEASE)
			return release(s->ref);
		if (s->kind == K_REF_WRITE)
			return (void)(r->outcome = OUT_REFUSED); /* a pipe or a R/O pin: read-only */
		/* step_K reads the pipe or the pin where the plan knew which one holds the name (a
		 * ring may hold it otherwise): it is handed the fd the coordinator holds. */
		int planned = s->take_kind == (ref->kind == REF_PIPE ? TAKE_VMSPLICE : TAKE_PIN);
		if (planned && s->run) {
			in_fd = ref->fd;
			s->run(r);
			in_fd = -1;
		} else if (ref->kind == REF_PIPE) {
			pipe_read(r, ref->fd);
		}
		/* @if gup */
		else {
			gup_read(r, ref->fd);
		}
		/* @endif gup */
		return;
	}
	if (!procs[s->proc].alive && s->kind == K_MMAP)
		spawn_root(s->proc);
	if (!procs[s->proc].alive)
		return error_text(r, "no such process");
	if (s->kind == K_MMAP && s->file >= 0) {
		if (files[s->file] < 0)
			return fail(r, ENOENT);
		/* A read-only file is opened O_RDONLY, so a shared mapping of it lacks VM_MAYWRITE. */
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", files[s->file]);
		int fd = open(path, (s->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0)
			return fail(r, errno);
		ask(s->proc, k, OP_STEP, 0, fd, r);
		close(fd);
		take_fd(r, s->proc);
		return;
	}
	if (s->kind == K_FORK || s->kind == K_TAKE) {
		if (name_in_use(s->ref))
			return error_text(r, "name in use");
	}
	if (s->kind == K_EXIT) {
		if (ask(s->proc, k, OP_EXIT, 0, -1, r) < 0)
			return;
		for (int i = 0; i <= NNAMES; i++)
			if (refs[i].kind != REF_NONE && refs[i].owner == s->proc) {
				if (refs[i].kind == REF_RING)
					refs[i] = (struct ref){ REF_NONE, -1, -1 }; /* died with its owner */
				else
					release(i);
			}
		reap(s->proc, k);
		return;
	}
	if (ask(s->proc, k, OP_STEP, 0, -1, r) < 0)
		return;
	take_fd(r, s->proc);
	if (s->kind == K_FORK && r->outcome == OUT_OK && r->fd >= 0) {
		procs[s->ref] = (struct proc){ 1, r->pid, r->fd, procs[s->proc].pid, -1 };
		r->fd = -1;
	} else if (s->kind == K_TAKE && r->outcome == OUT_OK) {
		int kind = r->fd_kind == FD_PIPE ? REF_PIPE : r->fd_kind == FD_GUP ? REF_GUP : REF_RING;
		refs[s->ref] = (struct ref){ kind, s->proc, r->fd };
		r->fd = -1;
	} else if (s->kind == K_TAKE && s->take_kind == TAKE_IOURING &&
		   (r->err == EPERM || r->err == ENOMEM)) {
		skip(k, "io_uring buffer registration refused (%s)", strerror(r->err));
	} else if (s->kind == K_TAKE && s->take_kind == TAKE_PIN && r->err == EINVAL) {
		/* Before gup_test kept its state per open file, it held one pinned range for the
		 * whole system: a second START fails with EINVAL. */
		skip(k, "gup_test refused the pin (it may hold only one pinned range)");
	}
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
}

/* What a program can see of a step, in the simulator's words (app/probe/compare.py): the
 * value a read observed, SIGSEGV, "call fails" for any errno, what MADV_PAGEOUT did, and the
 * userfaults delivered. */
static void observe(int k, const struct reply *r)
{
	const struct step *s = &steps[k];
	const char *refusal = NULL;
	char *main_obs = observed[k][0];
	if (r->outcome == OUT_SEGV)
		refusal = "SIGSEGV";
	else if (r->outcome == OUT_ERRNO || r->outcome == OUT_REFUSED)
		refusal = "call fails";
	else if (r->outcome == OUT_ERROR)
		refusal = "error";
	if (s->read)
		snprintf(main_obs, OBS_WIDTH, "%s", r->value[0] ? r->value : refusal ? refusal : "nothing");
	else if (s->kind == K_SWAPOUT && r->value[0] && !s->quiet)
		snprintf(main_obs, OBS_WIDTH, "%s", r->value);
	else if (refusal)
		snprintf(main_obs, OBS_WIDTH, "%s", refusal);
	if (userfaults)
		snprintf(observed[k][1], OBS_WIDTH, "userfault \xc3\x97%d", userfaults);
	if (r->frame[0])
		snprintf(observed[k][2], OBS_WIDTH, "frame %s", r->frame);
	for (int i = 0; i < 3; i++)
		if (observed[k][i][0])
			printf("observed %d %s\n", k, observed[k][i]);
	if (r->outcome == OUT_ERRNO)
		printf("# step %d: %s\n", k, strerror(r->err));
	else if (r->outcome == OUT_ERROR)
		printf("# step %d: %s\n", k, r->text);
}

static void teardown(void)
{
	for (int i = 0; i <= NNAMES; i++) {
		if (refs[i].kind != REF_NONE)
			release(i);
		if (files[i] >= 0)
			close(files[i]);
		files[i] = -1;
	}
	for (int i = 0; i <= NNAMES; i++)
		if (procs[i].alive) {
			close(procs[i].sock);
			if (procs[i].uffd >= 0)
				close(procs[i].uffd);
			kill(procs[i].pid, SIGKILL);
			procs[i].alive = 0;
		}
	/* Reap every child, orphaned grandchildren included (we are their subreaper). */
	for (int waited = 0; waited < REAP_GRACE_MS; waited++) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid < 0)
			return;
		if (pid == 0) {
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
		}
	}
	printf("# children still running after %d ms\n", REAP_GRACE_MS);
}

/* -- what this kernel offers: each found by trying it on a scratch page --------------------- */
HELPER void *scratch_page(int prot)
{
	void *p = mmap(NULL, page_size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static const char *check_swap(void)
{
	FILE *f = fopen("/proc/swaps", "re");
	char line[512];
	int lines = 0;
	if (!f)
		return "no swap configured (/proc/swaps unreadable)";
	while (fgets(line, sizeof line, f))
		if (strspn(line, " \t\n") < strlen(line))
			lines++;
	fclose(f);
	return lines > 1 ? NULL : "no swap configured";
}

/* @if softdirty */
/* Without CONFIG_MEM_SOFT_DIRTY, clear_refs 4 succeeds and does nothing: a freshly written page
 * carries the soft-dirty bit (pagemap bit 55) only where it is built in. */
static const char *check_softdirty(void)
{
	char *p = scratch_page(PROT_READ | PROT_WRITE);
	if (!p)
		return "soft-dirty tracking cannot be checked";
	p[0] = 'x';
	uint64_t entry = pagemap((uintptr_t)p);
	munmap(p, page_size);
	return entry >> 55 & 1 ? NULL : "soft-dirty tracking not built into this kernel (CONFIG_MEM_SOFT_DIRTY)";
}
/* @endif softdirty */

/* @if iouring */
static const char *check_iouring(void)
{
	static char reason[128];
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	if (f) {
		int disabled = fgetc(f);
		fclose(f);
		if (disabled == '2')
			return "io_uring disabled (kernel.io_uring_disabled=2)";
	}
	char *p = scratch_page(PROT_READ | PROT_WRITE);
	struct ring ring;
	int err = p ? ring_open(&ring, (uintptr_t)p) : ENOMEM;
	if (!err)
		ring_close(&ring);
	if (p)
		munmap(p, page_size);
	if (!err)
		return NULL;
	snprintf(reason, sizeof reason, "io_uring fixed buffers not available (%s)", strerror(err));
	return reason;
}
/* @endif iouring */

/* @if uffd */
static const char *check_uffd_wp(void)
{
	static char reason[160];
	char *p = scratch_page(PROT_READ | PROT_WRITE);
	int fd = uffd_open(), err = 0;
	if (fd < 0 || !p || uffd_register(fd, (uintptr_t)p, page_size) < 0 ||
	    uffd_writeprotect(fd, (uintptr_t)p, page_size, 1) < 0 ||
	    uffd_writeprotect(fd, (uintptr_t)p, page_size, 0) < 0)
		err = errno ? errno : ENOMEM;
	if (fd >= 0)
		close(fd);
	if (p)
		munmap(p, page_size);
	if (!err)
		return NULL;
	snprintf(reason, sizeof reason, "userfaultfd write-protect not available: %s%s", strerror(err),
		 err == EPERM ? " (vm.unprivileged_userfaultfd=0 and no CAP_SYS_PTRACE)" : "");
	return reason;
}
/* @endif uffd */

/* @if gup */
static const char *check_gup_test(void)
{
	static char reason[160];
	int fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return NULL;
	}
	if (errno == ENOENT)
		return "gup_test not available (" GUP_TEST_PATH " missing: CONFIG_GUP_TEST, debugfs)";
	snprintf(reason, sizeof reason, "gup_test not available (%s)", strerror(errno));
	return reason;
}
/* @endif gup */

/* @if forcewrite */
/* /proc/PID/mem must write through a read-only mapping (FOLL_FORCE); kernels built with
 * CONFIG_PROC_MEM_NO_FORCE or booted with proc_mem.force_override=never refuse. */
static const char *check_forcewrite(void)
{
	static char reason[128];
	char *p = scratch_page(PROT_READ);
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC), err = 0;
	if (!p || fd < 0 || pwrite(fd, "x", 1, (off_t)(uintptr_t)p) != 1)
		err = errno ? errno : ENOMEM;
	if (fd >= 0)
		close(fd);
	if (p)
		munmap(p, page_size);
	if (!err)
		return NULL;
	snprintf(reason, sizeof reason, "/proc/self/mem does not force writes on this kernel (%s)",
		 strerror(err));
	return reason;
}
/* @endif forcewrite */

/* The swap device MADV_PAGEOUT writes to first: "zram" for a synchronous block device
 * (SWP_SYNCHRONOUS_IO: zram, brd, pmem), "file" otherwise, NULL without swap. */
static const char *swap_device(void)
{
	FILE *f = fopen("/proc/swaps", "re");
	char line[512], path[PATH_MAX], type[32], best[16] = "";
	long best_prio = LONG_MIN;
	if (!f)
		return NULL;
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		return NULL;
	}
	while (fgets(line, sizeof line, f)) {
		long size, used, prio;
		if (sscanf(line, "%255s %31s %ld %ld %ld", path, type, &size, &used, &prio) != 5 || prio <= best_prio)
			continue;
		best_prio = prio;
		strcpy(best, "file");
		char real[PATH_MAX];
		if (strcmp(type, "partition") == 0 && realpath(path, real)) {
			const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
			const char *prefixes[] = { "zram", "ram", "pmem" };
			for (int i = 0; i < 3; i++) {
				size_t n = strlen(prefixes[i]);
				const char *digits = base + n;
				size_t d = strspn(digits, "0123456789");
				int tail_ok = digits[d] == 0 || (i == 2 && digits[d] == 's' && digits[d + 1] == 0);
				if (strncmp(base, prefixes[i], n) == 0 && d > 0 && tail_ok)
					strcpy(best, "zram");
			}
		}
	}
	fclose(f);
	static char device[16];
	strcpy(device, best);
	return device[0] ? device : NULL;
}

/* The era of a mainline kernel version: of the merged eras whose range covers it, the one that
 * starts latest (as engine.policies.policy_for_kernel). Stable and distribution kernels may
 * carry backports of another era: "behaves like" says what this kernel did. */
static int era_of(int major, int minor)
{
	int best = -1;
	long version = major * 1000L + minor;
	for (int e = 0; e < NERAS; e++) {
		const struct era *era = &eras[e];
		if (!era->merged || version < era->since)
			continue;
		if (era->until >= 0 && version > era->until)
			continue;
		if (best < 0 || era->since > eras[best].since)
			best = e;
	}
	return best;
}

static const char *needs_reason(int needs, const char *reasons[NEEDS])
{
	for (int i = 0; i < NEEDS; i++)
		if (needs & (1 << i) && reasons[i])
			return reasons[i];
	return NULL;
}

static void join(char *out, size_t size, const char *const parts[], int n)
{
	size_t at = 0;
	out[0] = 0;
	for (int i = 0; i < n && at < size; i++)
		if (parts[i][0])
			at += (size_t)snprintf(out + at, size - at, "%s%s", at ? " + " : "", parts[i]);
}

/* The observations of one step joined as compare.py joins them ("v1 + userfault ×1"). */
static void joined(int k, char *out, size_t size)
{
	const char *const parts[] = { observed[k][0], observed[k][1], observed[k][2] };
	join(out, size, parts, 3);
}

/* What era ``e`` expects at step k, with what a store does to the frame where this kernel
 * showed it (as the probe compares frames only where the kernel could show them). */
static const char *want(int variant, int e, int k, char *out, size_t size)
{
	const char *const parts[] = { V[expected[variant][e][k]],
				      observed[k][2][0] ? V[expected_frame[variant][e][k]] : "" };
	join(out, size, parts, 2);
	return out;
}

int main(int argc, char **argv)
{
	struct utsname uts;
	int major = 0, minor = 0, variant = 0;
	double timeout = argc > 1 ? atof(argv[1]) : 10.0;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	for (int i = 0; i <= NPAGES; i++) {
		pg[i] = HOLE;
		pglen[i] = page_size;
	}
	for (int i = 0; i <= NNAMES; i++) {
		files[i] = -1;
		refs[i] = (struct ref){ REF_NONE, -1, -1 };
		procs[i].uffd = -1;
		/* @if iouring */
		rings[i].fd = rings[i].scratch = -1;
		/* @endif iouring */
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	uname(&uts);
	sscanf(uts.release, "%d.%d", &major, &minor);
	int era = era_of(major, minor);
	printf("# kernel %s -> era %s\n", uts.release, era >= 0 ? eras[era].id : "(none)");
	if (timeout <= 0)
		timeout = 10.0;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)timeout;
	deadline.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		skip(1, "cannot become a child subreaper (%s)", strerror(errno));

	/* What this kernel lets the program do, checked only for what the scenario needs. */
	const char *reasons[NEEDS] = { 0 };
	int needed = 0;
	for (int k = 1; k <= NSTEPS; k++)
		needed |= steps[k].needs;
	const char *(*checks[NEEDS])(void) = {
		[NEED_AT_SWAP] = check_swap,
		/* @if softdirty */
		[NEED_AT_SOFTDIRTY] = check_softdirty,
		/* @endif softdirty */
		/* @if iouring */
		[NEED_AT_IOURING] = check_iouring,
		/* @endif iouring */
		/* @if uffd */
		[NEED_AT_UFFD_WP] = check_uffd_wp,
		/* @endif uffd */
		/* @if gup */
		[NEED_AT_GUP_TEST] = check_gup_test,
		/* @endif gup */
		/* @if forcewrite */
		[NEED_AT_FORCEWRITE] = check_forcewrite,
		/* @endif forcewrite */
	};
	for (int i = 0; i < NEEDS; i++)
		if (needed & (1 << i))
			reasons[i] = checks[i]();
	const char *device = (NVARIANTS > 1 || NAMED_SWAP[0]) ? swap_device() : NULL;
	if (device) {
		printf("# swap: %s\n", strcmp(device, "zram") == 0 ? "a synchronous device (zram)" : "a swap file or partition");
		if (NAMED_SWAP[0] && strcmp(NAMED_SWAP, device) != 0)
			skip(1, "the scenario names `#swap %s`, but this machine swaps to another kind of device", NAMED_SWAP);
		for (int v = 0; v < NVARIANTS; v++)
			if (strcmp(variant_devices[v], device) == 0)
				variant = v;
	}

	for (int k = 1; k <= NSTEPS && !skip_step; k++) {
		struct reply r;
		const char *why = needs_reason(steps[k].needs, reasons);
		if (steps[k].impossible) {
			skip(k, "%s", steps[k].impossible);
			break;
		}
		if (why) {
			char text[320];
			snprintf(text, sizeof text, "%s (needed by `%s`)", why, steps[k].text);
			skip(k, "%s", text);
			break;
		}
		userfaults = 0;
		run_step(k, &r);
		if (r.outcome == OUT_SKIP)
			skip(k, "%s (at step %d, `%s`)", r.text, k, steps[k].text);
		if (skip_step)
			break;
		observe(k, &r);
		/* MADV_PAGEOUT is advice: when the kernel kept a page the simulator swaps out, the rest
		 * is a different experiment. */
		if (steps[k].kind == K_SWAPOUT && era >= 0 && strcmp(observed[k][0], "stays resident") == 0 &&
		    strcmp(V[expected[variant][era][k]], "swapped out") == 0)
			skip(k + 1, "the kernel kept the page resident at step %s", steps[k].text);
	}
	teardown();

	/* TAP: one test per step some era observes something at (every read among them), then one
	 * for every other step: nothing observed there. */
	int ran = skip_step ? skip_step - 1 : NSTEPS;
	printf("1..%d\n", NCHECKED + 1);
	int n = 0, others_ok = 1;
	for (int k = 1; k <= NSTEPS; k++) {
		char got[3 * OBS_WIDTH + 8], buf[3 * OBS_WIDTH + 8];
		joined(k, got, sizeof got);
		if (!checked[k]) {
			if (k <= ran && got[0]) {
				others_ok = 0;
				printf("# step %d `%s`: observed %s, no era expects anything\n", k, steps[k].text, got);
			}
			continue;
		}
		n++;
		const char *wanted = era >= 0 ? want(variant, era, k, buf, sizeof buf) : "";
		if (k > ran)
			printf("ok %d - step %d `%s` # SKIP %s\n", n, k, steps[k].text, skip_reason);
		else if (era < 0)
			printf("ok %d - step %d `%s` # SKIP no era covers kernel %d.%d\n", n, k, steps[k].text, major, minor);
		else if (strcmp(got, wanted) == 0)
			printf("ok %d - step %d `%s`: %s\n", n, k, steps[k].text, wanted[0] ? wanted : "nothing");
		else
			printf("not ok %d - step %d `%s`: expected %s, observed %s\n", n, k, steps[k].text,
			       wanted[0] ? wanted : "nothing", got[0] ? got : "nothing");
	}
	printf("%sok %d - nothing observed at any other step%s\n", others_ok ? "" : "not ", n + 1,
	       skip_step ? " that ran" : "");
	if (skip_step)
		printf("# skipped from step %d: %s\n", skip_step, skip_reason);

	/* In the engine's words (a leak, stale data, a userfault…): what the era that expects what
	 * this kernel did at a step says of it, this kernel's own era first. */
	for (int k = 1; k <= ran; k++) {
		char got[3 * OBS_WIDTH + 8], buf[3 * OBS_WIDTH + 8];
		joined(k, got, sizeof got);
		int e = era >= 0 && strcmp(got, want(variant, era, k, buf, sizeof buf)) == 0 ? era : -1;
		for (int i = 0; i < NERAS && e < 0; i++)
			if (strcmp(got, want(variant, i, k, buf, sizeof buf)) == 0)
				e = i;
		if (e >= 0 && V[said[variant][e][k]][0])
			printf("# step %d `%s`: %s (era %s)\n", k, steps[k].text, V[said[variant][e][k]], eras[e].id);
	}

	/* Every era whose expected observations equal what this kernel did (on the steps run).
	 * A run cut short (a timeout, a skip) that told no era from another says so instead of
	 * listing them all: it saw nothing that could. */
	int like[NERAS], liked = 0;
	for (int e = 0; e < NERAS; e++) {
		like[e] = 1;
		for (int k = 1; k <= ran && like[e]; k++) {
			char got[3 * OBS_WIDTH + 8], buf[3 * OBS_WIDTH + 8];
			joined(k, got, sizeof got);
			like[e] = strcmp(got, want(variant, e, k, buf, sizeof buf)) == 0;
		}
		liked += like[e];
	}
	if (skip_step && liked == NERAS) {
		printf("# behaves like no era in particular: every era expects what the steps that ran showed\n");
	} else {
		printf("# behaves like%s:", skip_step ? " (on the steps that ran)" : "");
		for (int e = 0; e < NERAS; e++)
			if (like[e])
				printf(" %s", eras[e].id);
		printf("\n");
	}
	/* Exit 1 when what this kernel did contradicts the era its version maps to. */
	return era >= 0 && ran > 0 && !like[era] ? 1 : 0;
}
