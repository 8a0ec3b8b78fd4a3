package docs

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// citation matches a reference to one of these documents, with its section
// when one is named on the same line: `docs/DECISIONS.md, D3` or
// `docs/ARCHITECTURE.md, "Who is heard"`.
var citation = regexp.MustCompile(`docs/([A-Z]+)\.md(?:,? (?:"([^"\n]+)"|(D[0-9]+)\b))?`)

// heading matches a Markdown section heading.
var heading = regexp.MustCompile(`(?m)^#{2,3} (.+)$`)

// decisionID takes the number of a DECISIONS.md heading such as
// "D3. Media only from ...".
var decisionID = regexp.MustCompile(`^(D[0-9]+)\.`)

// repoFiles returns the repository's text files that may cite documents,
// relative to the repository root.
func repoFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == ".git" || name == "testdata" || name == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(name) {
		case ".go", ".md", ".sh", ".yaml", ".yml", ".txt", ".xml":
		default:
			if name != "Makefile" && name != "run" {
				return nil
			}
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// sections returns the headings of a document in this directory, and for
// DECISIONS.md also the record numbers (D1, D2, ...).
func sections(t *testing.T, doc string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(doc + ".md")
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range heading.FindAllSubmatch(b, -1) {
		title := strings.TrimSpace(string(m[1]))
		out[title] = true
		if id := decisionID.FindStringSubmatch(title); id != nil {
			out[id[1]] = true
		}
	}
	return out
}

// TestCitationsResolve: every document the repository cites under docs/ is
// in the repository, and every section a citation names is a heading of it.
// Documents kept outside the repository (the early design notes) must not be
// cited at all: a clone does not have them.
func TestCitationsResolve(t *testing.T) {
	outside := []string{"DESIGN" + ".md", "FIELD" + "-NOTES"}
	docs := map[string]map[string]bool{}
	for _, path := range repoFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			for _, o := range outside {
				if strings.Contains(line, o) {
					t.Errorf("%s:%d cites %s, which is not in the repository", path, n, o)
				}
			}
			for _, m := range citation.FindAllStringSubmatch(line, -1) {
				doc, section := m[1], m[2]+m[3]
				if _, ok := docs[doc]; !ok {
					docs[doc] = sections(t, doc)
				}
				secs := docs[doc]
				switch {
				case secs == nil:
					t.Errorf("%s:%d cites docs/%s.md, which does not exist", path, n, doc)
				case section != "" && !secs[section]:
					t.Errorf("%s:%d cites section %q of docs/%s.md, which has no such heading", path, n, section, doc)
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

// TestLinuxOnlyAsDocumented: the README and DECISIONS.md (D16) say Linux is
// required because media/rtpio uses epoll; every file of that package must
// then say so too, or another system gets undefined symbols instead of a
// build-constraint message.
func TestLinuxOnlyAsDocumented(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "media", "rtpio", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("media/rtpio: no Go files (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// "linux" alone, or "linux && more" (a file of race builds only).
		if !bytes.HasPrefix(b, []byte("//go:build linux\n")) && !bytes.HasPrefix(b, []byte("//go:build linux && ")) {
			t.Errorf("%s does not start with //go:build linux", f)
		}
	}
}
