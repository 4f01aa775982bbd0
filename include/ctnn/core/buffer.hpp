// ctnn/core/buffer.hpp: a 64-byte aligned, zero-initialized array that only grows.
//
// 64 bytes is a cache line and a full AVX-512 vector, so every arena and activation buffer
// starts on a vector boundary. resize() to a size at or below the capacity does not allocate,
// which is what keeps steady-state training and inference free of heap traffic.
#pragma once
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

namespace ctnn {

inline constexpr std::size_t kAlignBytes = 64;

template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer& o) : AlignedBuffer(o.size_) {
    if (size_) std::memcpy(data_, o.data_, size_ * sizeof(T));
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept { swap(o); }
  AlignedBuffer& operator=(AlignedBuffer o) noexcept {
    swap(o);
    return *this;
  }
  ~AlignedBuffer() { release(); }

  void swap(AlignedBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
  }

  // Sets the size to n; new elements (beyond the old size) are zero. Allocates only when n
  // exceeds the capacity.
  void resize(std::size_t n) {
    if (n > capacity_) {
      T* fresh = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kAlignBytes}));
      std::memset(static_cast<void*>(fresh), 0, n * sizeof(T));
      if (size_) std::memcpy(static_cast<void*>(fresh), data_, size_ * sizeof(T));
      release();
      data_ = fresh;
      capacity_ = n;
    } else if (n > size_ && data_ != nullptr) {  // (data_ is set whenever capacity_ > 0)
      std::memset(static_cast<void*>(data_ + size_), 0, (n - size_) * sizeof(T));
    }
    size_ = n;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  void release() {
    if (data_) ::operator delete(data_, std::align_val_t{kAlignBytes});
    data_ = nullptr;
    size_ = capacity_ = 0;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace ctnn
