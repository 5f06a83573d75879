// SPDX-License-Identifier: MIT
#include "src/io/mappedfile.hpp"

#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include "src/errors.hpp"

namespace vstash::io {

namespace {

// The SIGBUS handler may run on any thread at any moment, so it reads only this fixed
// table: a slot is published by storing its start last, and retired by clearing it first.
struct GuardSlot {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  char message[320] = {};  // "vstash: error: PATH: truncated while being read\n"
  size_t message_length = 0;
};
constexpr int k_guard_slots = 64;
GuardSlot g_slots[k_guard_slots];
std::mutex g_slots_mutex;  // writers only; the handler never locks
struct sigaction g_previous {};

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto at = reinterpret_cast<uintptr_t>(info->si_addr);
  for (auto& slot : g_slots) {
    const uintptr_t begin = slot.begin.load(std::memory_order_acquire);
    if (begin != 0 && at >= begin && at < slot.end.load(std::memory_order_relaxed)) {
      // write(2) and _exit(2) are async-signal-safe; nothing else is called here.
      [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, slot.message, slot.message_length);
      ::_exit(static_cast<int>(ExitCode::usage));
    }
  }
  // Not one of ours: whatever handled SIGBUS before us does (by default, the crash).
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN && g_previous.sa_handler != nullptr) {
    g_previous.sa_handler(sig);
    return;
  }
  ::signal(SIGBUS, SIG_DFL);
  ::raise(SIGBUS);
}

int guard(const std::byte* begin, size_t length, const std::string& path) {
  std::lock_guard lock(g_slots_mutex);
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    return ::sigaction(SIGBUS, &action, &g_previous) == 0;
  }();
  if (!installed) {
    return -1;
  }
  for (int i = 0; i < k_guard_slots; ++i) {
    GuardSlot& slot = g_slots[i];
    if (slot.begin.load(std::memory_order_relaxed) != 0) {
      continue;
    }
    static constexpr std::string_view head = "vstash: error: ";
    static constexpr std::string_view tail = ": truncated while being read (changed by another process?)\n";
    const size_t room = sizeof(slot.message) - head.size() - tail.size();
    const size_t path_length = std::min(path.size(), room);
    char* p = slot.message;
    p = std::copy(head.begin(), head.end(), p);
    p = std::copy_n(path.data(), path_length, p);
    p = std::copy(tail.begin(), tail.end(), p);
    slot.message_length = static_cast<size_t>(p - slot.message);
    const auto start = reinterpret_cast<uintptr_t>(begin);
    slot.end.store(start + length, std::memory_order_relaxed);
    slot.begin.store(start, std::memory_order_release);
    return i;
  }
  return -1;  // more live mappings than slots: this one goes unguarded
}

void unguard(int slot) {
  if (slot >= 0) {
    std::lock_guard lock(g_slots_mutex);
    g_slots[slot].begin.store(0, std::memory_order_release);
  }
}

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::map(int fd, const std::string& path, uint64_t offset, size_t length) {
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  const size_t span = length + static_cast<size_t>(offset - start);
  void* map = ::mmap(nullptr, span, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(start));
  if (map == MAP_FAILED) {
    return nullptr;
  }
  ::madvise(map, span, MADV_SEQUENTIAL);
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->m_map = map;
  file->m_map_length = span;
  file->m_data = static_cast<const std::byte*>(map) + (offset - start);
  file->m_length = length;
  file->m_guard_slot = guard(static_cast<const std::byte*>(map), span, path);
  return file;
}

void MappedFile::release(size_t offset, size_t length) const {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(m_data) + std::min(offset, m_length);
  const auto end = reinterpret_cast<uintptr_t>(m_data) + std::min(offset + length, m_length);
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = end / page * page;
  if (last > first) {
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
}

MappedFile::~MappedFile() {
  unguard(m_guard_slot);
  ::munmap(m_map, m_map_length);
}

}  // namespace vstash::io
