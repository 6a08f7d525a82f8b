package teams

import (
	"bytes"
	"encoding/json"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// go test ./deploy/teams -run TestIcons -update rewrites color.png and
// outline.png from drawIcon.
var update = flag.Bool("update", false, "rewrite the icons from the generator")

// checkMark is the icon's symbol: a check mark through these points, in
// units of the icon's size.
var checkMark = [][2]float64{{0.30, 0.52}, {0.44, 0.66}, {0.71, 0.36}}

// drawIcon draws a size×size icon: the check mark (of stroke width
// stroke, in units of size) in fg over bg, anti-aliased by coverage.
func drawIcon(size int, stroke float64, fg, bg color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	const samples = 4 // 4×4 supersampling per pixel
	for y := range size {
		for x := range size {
			covered := 0
			for sy := range samples {
				for sx := range samples {
					px := (float64(x) + (float64(sx)+0.5)/samples) / s
					py := (float64(y) + (float64(sy)+0.5)/samples) / s
					if distToPolyline(px, py, checkMark) <= stroke/2 {
						covered++
					}
				}
			}
			a := float64(covered) / (samples * samples)
			img.SetNRGBA(x, y, blend(fg, bg, a))
		}
	}
	return img
}

func blend(fg, bg color.NRGBA, a float64) color.NRGBA {
	if bg.A == 0 {
		return color.NRGBA{fg.R, fg.G, fg.B, uint8(math.Round(a * float64(fg.A)))}
	}
	mix := func(f, b uint8) uint8 { return uint8(math.Round(a*float64(f) + (1-a)*float64(b))) }
	return color.NRGBA{mix(fg.R, bg.R), mix(fg.G, bg.G), mix(fg.B, bg.B), 255}
}

func distToPolyline(px, py float64, pts [][2]float64) float64 {
	best := math.Inf(1)
	for i := 0; i+1 < len(pts); i++ {
		ax, ay, bx, by := pts[i][0], pts[i][1], pts[i+1][0], pts[i+1][1]
		dx, dy := bx-ax, by-ay
		t := ((px-ax)*dx + (py-ay)*dy) / (dx*dx + dy*dy)
		t = max(0, min(1, t))
		best = min(best, math.Hypot(px-(ax+t*dx), py-(ay+t*dy)))
	}
	return best
}

var (
	white = color.NRGBA{255, 255, 255, 255}
	green = color.NRGBA{0x2E, 0x7D, 0x32, 255}
)

func encode(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestIcons(t *testing.T) {
	icons := []struct {
		file string
		img  *image.NRGBA
		got  []byte
	}{
		{"color.png", drawIcon(192, 0.09, white, green), ColorIcon},
		{"outline.png", drawIcon(32, 0.13, white, color.NRGBA{}), OutlineIcon},
	}
	for _, ic := range icons {
		want := encode(t, ic.img)
		if *update {
			if err := os.WriteFile(ic.file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !bytes.Equal(ic.got, want) {
			t.Errorf("%s differs from the generator's output; run go test ./deploy/teams -run TestIcons -update", ic.file)
		}
	}
	if *update {
		return
	}

	// What Teams asks of the icons.
	color192, err := png.Decode(bytes.NewReader(ColorIcon))
	if err != nil {
		t.Fatal(err)
	}
	if b := color192.Bounds(); b.Dx() != 192 || b.Dy() != 192 {
		t.Errorf("color icon is %v, want 192×192", b)
	}
	outline, err := png.Decode(bytes.NewReader(OutlineIcon))
	if err != nil {
		t.Fatal(err)
	}
	if b := outline.Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Errorf("outline icon is %v, want 32×32", b)
	}
	transparent := 0
	for y := range 32 {
		for x := range 32 {
			c := color.NRGBAModel.Convert(outline.At(x, y)).(color.NRGBA)
			if c.A == 0 {
				transparent++
				continue
			}
			if c.R != 255 || c.G != 255 || c.B != 255 {
				t.Fatalf("outline icon pixel (%d,%d) is %v; it must be white or transparent", x, y, c)
			}
		}
	}
	if transparent == 0 || transparent == 32*32 {
		t.Errorf("outline icon has %d transparent pixels", transparent)
	}
}

func TestManifest(t *testing.T) {
	if !bytes.Contains(Manifest, []byte(AppIDPlaceholder)) {
		t.Fatal("the manifest has no app id placeholder")
	}
	out, err := RenderManifest("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ID       string `json:"id"`
		Manifest string `json:"manifestVersion"`
		Icons    struct{ Color, Outline string }
		Name     struct{ Short string }
		Desc     struct{ Short, Full string } `json:"description"`
		Bots     []struct {
			BotID              string   `json:"botId"`
			Scopes             []string `json:"scopes"`
			IsNotificationOnly bool     `json:"isNotificationOnly"`
		} `json:"bots"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	const id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	if m.ID != id || len(m.Bots) != 1 || m.Bots[0].BotID != id {
		t.Errorf("ids: %q %+v", m.ID, m.Bots)
	}
	if strings.Contains(string(out), "{{") {
		t.Error("a placeholder is left")
	}
	if !slices.Equal(m.Bots[0].Scopes, []string{"team", "groupChat"}) || m.Bots[0].IsNotificationOnly {
		t.Errorf("bot: %+v", m.Bots[0])
	}
	if m.Icons.Color != "color.png" || m.Icons.Outline != "outline.png" {
		t.Errorf("icons: %+v", m.Icons)
	}
	if len(m.Name.Short) > 30 || len(m.Desc.Short) > 80 || len(m.Desc.Full) > 4000 {
		t.Error("a name or description is longer than Teams allows")
	}
	for _, bad := range []string{"", "bot", "{{BOT_ID}}", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0x"} {
		if _, err := RenderManifest(bad); err == nil {
			t.Errorf("RenderManifest(%q) accepted", bad)
		}
	}
}
