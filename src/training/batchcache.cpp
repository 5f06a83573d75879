// SPDX-License-Identifier: MIT
// STUB: to be written.
