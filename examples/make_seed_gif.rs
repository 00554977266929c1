//! Generates `seed/gateway.gif`, the animated GIF bundled into the binary.
//!
//! Run from the repository root: `cargo run --example make_seed_gif`
//!
//! A deterministic plasma animation (no randomness from the OS: a fixed xorshift seed adds grain),
//! so the same command always remakes the same bytes. The grain keeps LZW from compressing the
//! frames too well: the file is meant to be between 1 MiB and 4 MiB, more than a Kubernetes
//! ConfigMap can hold, which is why the gateway ships it inside its binary.

use std::fs::File;

const WIDTH: u16 = 320;
const HEIGHT: u16 = 240;
const FRAMES: u32 = 36;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let palette = palette();
    let mut out = File::create("seed/gateway.gif")?;
    let mut encoder = gif::Encoder::new(&mut out, WIDTH, HEIGHT, &palette)?;
    encoder.set_repeat(gif::Repeat::Infinite)?;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for f in 0..FRAMES {
        let t = f as f32 / FRAMES as f32 * std::f32::consts::TAU;
        let mut pixels = Vec::with_capacity(usize::from(WIDTH) * usize::from(HEIGHT));
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let (fx, fy) = (f32::from(x), f32::from(y));
                let (cx, cy) = (fx - 160.0 + 60.0 * t.cos(), fy - 120.0 + 40.0 * t.sin());
                let v = (fx / 23.0 + t).sin()
                    + (fy / 17.0 - t).sin()
                    + ((fx + fy) / 31.0 + 2.0 * t).sin()
                    + ((cx * cx + cy * cy).sqrt() / 11.0 - t).sin();
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let grain = (rng % 9) as f32 - 4.0;
                let index = ((v + 4.0) / 8.0 * 247.0 + 4.0 + grain).clamp(0.0, 255.0) as u8;
                pixels.push(index);
            }
        }
        let mut frame = gif::Frame::from_indexed_pixels(WIDTH, HEIGHT, pixels, None);
        frame.delay = 6; // hundredths of a second
        encoder.write_frame(&frame)?;
    }
    drop(encoder);
    let size = std::fs::metadata("seed/gateway.gif")?.len();
    println!("wrote seed/gateway.gif: {size} bytes ({FRAMES} frames of {WIDTH}x{HEIGHT})");
    Ok(())
}

/// 256 colours: deep blue through teal and gold to white.
fn palette() -> Vec<u8> {
    let stops: [(f32, [f32; 3]); 5] = [
        (0.0, [10.0, 14.0, 60.0]),
        (0.3, [20.0, 120.0, 160.0]),
        (0.6, [240.0, 190.0, 40.0]),
        (0.85, [230.0, 80.0, 60.0]),
        (1.0, [255.0, 250.0, 240.0]),
    ];
    let mut p = Vec::with_capacity(768);
    for i in 0..256 {
        let x = i as f32 / 255.0;
        let w = stops.windows(2).find(|w| x <= w[1].0).unwrap_or(&stops[3..5]);
        let k = (x - w[0].0) / (w[1].0 - w[0].0);
        for c in 0..3 {
            p.push((w[0].1[c] + (w[1].1[c] - w[0].1[c]) * k) as u8);
        }
    }
    p
}
