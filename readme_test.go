package nova_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// exampleMark, on the line before a ```go block of README.md, names the
// example test file that holds the block's code verbatim.
var exampleMark = regexp.MustCompile(`^<!-- example: (\S+) -->$`)

// minReadmeExamples is how many marked blocks the README has at least,
// so that losing the marks fails this test rather than silently passing.
const minReadmeExamples = 5

// TestReadmeExamples checks that the README's marked Go blocks are the
// code of example tests, which compile and check their output: each block
// must appear in its file as written (declarations) or with every
// non-empty line indented by one tab (a function's body).
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := markedBlocks(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) < minReadmeExamples {
		t.Fatalf("README.md has %d Go blocks marked <!-- example: FILE -->, want at least %d", len(blocks), minReadmeExamples)
	}
	for _, b := range blocks {
		src, err := os.ReadFile(filepath.FromSlash(b.file))
		if err != nil {
			t.Errorf("README.md line %d: %v", b.line, err)
			continue
		}
		if !strings.HasSuffix(b.file, "_test.go") {
			t.Errorf("README.md line %d: %s is not a test file, so its code is not run", b.line, b.file)
		}
		if !strings.Contains(string(src), b.code) && !strings.Contains(string(src), indent(b.code)) {
			t.Errorf("README.md line %d: the block is not in %s as written (nor indented by one tab); make the two the same:\n%s", b.line, b.file, b.code)
		}
	}
}

// readmeBlock is one marked Go block: its code (ending in a newline), the
// file it must appear in and the README line it starts on.
type readmeBlock struct {
	file, code string
	line       int
}

// markedBlocks returns the Go blocks of a Markdown text that follow an
// example mark. A mark not followed by a Go block is an error.
func markedBlocks(md string) ([]readmeBlock, error) {
	lines := strings.Split(md, "\n")
	var out []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := exampleMark.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "```go" {
			return nil, fmt.Errorf("README.md line %d: the next line does not open a ```go block", i+1)
		}
		start := i + 2
		end := start
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("README.md line %d: the Go block is not closed", i+2)
		}
		out = append(out, readmeBlock{file: m[1], code: strings.Join(lines[start:end], "\n") + "\n", line: start + 1})
		i = end
	}
	return out, nil
}

// indent returns code with every non-empty line indented by one tab.
func indent(code string) string {
	lines := strings.Split(code, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "\n")
}

// TestMarkedBlocks checks the reader of marks: the code between the fences
// is taken whole, and a mark without its block is refused.
func TestMarkedBlocks(t *testing.T) {
	t.Parallel()
	md := "text\n<!-- example: a_test.go -->\n```go\nx := 1\n\nfmt.Println(x)\n```\n```go\nunmarked()\n```\n"
	got, err := markedBlocks(md)
	if err != nil || len(got) != 1 || got[0].file != "a_test.go" || got[0].code != "x := 1\n\nfmt.Println(x)\n" || got[0].line != 4 {
		t.Fatalf("markedBlocks = %+v, %v; want one block of a_test.go from line 4", got, err)
	}
	if indent(got[0].code) != "\tx := 1\n\n\tfmt.Println(x)\n" {
		t.Fatalf("indent = %q", indent(got[0].code))
	}
	for _, bad := range []string{
		"<!-- example: a_test.go -->\ntext\n",
		"<!-- example: a_test.go -->\n```go\nx := 1\n",
		"<!-- example: a_test.go -->",
	} {
		if _, err := markedBlocks(bad); err == nil {
			t.Errorf("markedBlocks(%q) succeeded, want an error", bad)
		}
	}
}
