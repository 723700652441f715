// bindery/core/error.hpp — the exception hierarchy.
//
// Every failure a user can cause (a bad shape, a malformed file, an index out of range) is reported
// as an exception derived from bindery::Error, with a message that says what and where. Parsers
// never abort, assert or read out of bounds; they throw one of these.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "bindery/config.hpp"

namespace bindery {

/// Base of every exception bindery throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Shapes that do not fit together: the message names every shape involved.
class ShapeError : public Error {
  using Error::Error;
};

/// An index, axis or range outside the valid bounds.
class IndexError : public Error {
  using Error::Error;
};

/// An argument with a valid shape but an invalid value (negative eps, probability > 1, ...).
class ValueError : public Error {
  using Error::Error;
};

/// A misuse of the autograd engine (backward twice without retain_graph, grad of a non-scalar...).
class AutogradError : public Error {
  using Error::Error;
};

/// A file that cannot be read or written (I/O failure).
class IoError : public Error {
  using Error::Error;
};

/// A file whose content is malformed: the message names the file and the byte offset.
class FormatError : public Error {
  using Error::Error;
};

/// A backend failure (out of memory, device error), with the backend's own message.
class BackendError : public Error {
  using Error::Error;
};

/// A failure of a collective across processes (dist/): a peer that died, a deadline that passed,
/// an engine error, or arguments that differ between ranks. The message names the rank and the op.
class DistError : public Error {
  using Error::Error;
};

namespace detail {

/// Streams every argument into one string: concat("shape ", s, " has ", n, " elements").
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}

}  // namespace detail

/// The message builder for user code (examples, your own errors): concat("got ", shape, " rows").
using detail::concat;

}  // namespace bindery
