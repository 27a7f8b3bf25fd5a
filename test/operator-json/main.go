// Command operator-json mirrors how the platform's Go operator renders
// KOMPUTER_MCP_SERVERS (SPEC.md, "The exact bytes"): json.Marshal of a
// map[string]mcpServerEntry, with the operator's struct copied below. It exists
// only for tests (test/unit/operator-bytes.test.ts): each stdin line is a JSON
// array of {name, url, tokenEnv, authType, headerName}; each output line is the
// operator's bytes for that array. Later entries win for a repeated name, as in
// the operator's map.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// mcpServerEntry is the operator's struct, field for field and tag for tag.
type mcpServerEntry struct {
	Type       string `json:"type"`
	URL        string `json:"url"`
	TokenEnv   string `json:"tokenEnv,omitempty"`
	AuthType   string `json:"authType,omitempty"`
	HeaderName string `json:"headerName,omitempty"`
}

type input struct {
	Name       string `json:"name"`
	URL        string `json:"url"`
	TokenEnv   string `json:"tokenEnv"`
	AuthType   string `json:"authType"`
	HeaderName string `json:"headerName"`
}

func main() {
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		var entries []input
		if err := dec.Decode(&entries); err == io.EOF {
			return
		} else if err != nil {
			fail(err)
		}
		servers := make(map[string]mcpServerEntry, len(entries))
		for _, e := range entries {
			servers[e.Name] = mcpServerEntry{Type: "http", URL: e.URL, TokenEnv: e.TokenEnv, AuthType: e.AuthType, HeaderName: e.HeaderName}
		}
		b, err := json.Marshal(servers)
		if err != nil {
			fail(err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "operator-json:", err)
	os.Exit(1)
}
