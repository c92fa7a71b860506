package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChromium renders the fixture's report in headless Chromium (Debian
// package chromium, or chromium-headless-shell): the page must load from a
// file with no network, its DOM must hold the alerts, and the screenshot
// must show the report. EDGEWARD_REPORT_SCREENSHOT=path keeps a copy of
// the screenshot.
func TestChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("headless Chromium takes seconds; skipped with -short")
	}
	bin := ""
	for _, name := range []string{"chromium", "chromium-headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium not on PATH (Debian: apt-get install chromium); the HTML report is not rendered")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, render(t, fixture(), fixtureMeta), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		args = append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1280,2000",
		}, append(args, "file://"+page)...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.WaitDelay = 5 * time.Second
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.Bytes())
		}
		return stdout.Bytes()
	}

	dom := string(run("--dump-dom"))
	for _, want := range []string{
		"IP-KVM device on the corporate LAN",
		"Remote laptop egresses outside its home country",
		"AnyDesk remote-control session",
		"Mesh VPN client on a managed laptop",
		"Consumer VPN provider",
		"Reverse tunnel service",
		"<svg",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}

	run("--screenshot=" + shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %dx%d, want 1280x2000", b.Dx(), b.Dy())
	}
	// A rendered report has the navy header, critical-red badges and many
	// colours; a blank or error page has none of these.
	colours, navy, red := census(img)
	t.Logf("screenshot: %d colours, %d header pixels, %d critical-red pixels", colours, navy, red)
	if colours < 200 || navy < 10000 || red < 200 {
		t.Errorf("screenshot looks empty: %d colours, %d header pixels, %d critical-red pixels", colours, navy, red)
	}
	if p := os.Getenv("EDGEWARD_REPORT_SCREENSHOT"); p != "" {
		if b, err := os.ReadFile(shot); err == nil {
			err = os.WriteFile(p, b, 0o644)
			if err != nil {
				t.Error(err)
			}
		}
	}
}

// census counts distinct colours and pixels close to the header's navy
// (#0e1a2b) and the critical red (#b42318).
func census(img image.Image) (colours, navy, red int) {
	seen := map[uint32]bool{}
	near := func(r, g, b uint32, R, G, B int) bool {
		d := func(x uint32, y int) int { return max(int(x>>8)-y, y-int(x>>8)) }
		return d(r, R) <= 6 && d(g, G) <= 6 && d(b, B) <= 6
	}
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[r>>8<<16|g>>8<<8|b>>8] = true
			switch {
			case near(r, g, b, 0x0e, 0x1a, 0x2b):
				navy++
			case near(r, g, b, 0xb4, 0x23, 0x18):
				red++
			}
		}
	}
	return len(seen), navy, red
}
