// Package docs holds the maintainer's documents, ARCHITECTURE.md and
// DECISIONS.md. It has no code; its test checks that the repository cites
// only documents it contains, and that each cited section exists.
package docs
