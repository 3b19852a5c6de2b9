//go:build race

package daemon_test

// raceBuild: the tests run with -race, and so does the daemon they build
// (its lock order and shared state are checked under the e2e and soak
// tests, not only in the unit tests).
const raceBuild = true
