//! The lava-lamp camera (V4L2 through `nokhwa`). Only uncompressed frames are taken — YUYV or
//! grey, never MJPEG, whose compression throws away exactly the sensor noise we want. Each frame
//! goes through the [`FramePath`]: checked, hashed whole with BLAKE3, and wiped. Nothing of an
//! image is written anywhere.
//!
//! A camera that is missing or stops answering makes the source unavailable (the pulse is made
//! from the other sources, and the manifest says why); it is opened again at the next pulse.
//!
//! The device lives on a thread of its own (nokhwa's camera may not move between threads, and
//! a driver that blocks forever must not hold anything else up): a pulse asks that thread for
//! its frames and waits at most the configured time for the answer.

use super::frame::{contribution, FrameChecks, FramePath};
use super::{Contribution, EntropySource, SourceError};
use nokhwa::utils::{
    CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};
use std::sync::mpsc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Where and how to take frames.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    /// The camera's index (0 is /dev/video0).
    pub index: u32,
    /// Width asked for (use one the camera lists: `v4l2-ctl --list-formats-ext`).
    pub width: u32,
    /// Height asked for.
    pub height: u32,
    /// Frame rate asked for.
    pub fps: u32,
    /// Frames hashed per pulse.
    pub frames_per_pulse: usize,
    /// Frames dropped after opening, while exposure and gain settle.
    pub warmup_frames: usize,
    /// The frame checks and the credit per unsaturated pixel.
    pub checks: FrameChecks,
}

/// The only formats we take: uncompressed.
static UNCOMPRESSED: &[FrameFormat] = &[FrameFormat::YUYV, FrameFormat::GRAY];

/// The device, on the camera thread.
struct Device {
    cfg: CameraConfig,
    open: Option<nokhwa::Camera>,
    path: FramePath,
}

impl Device {
    fn unavailable(&self, what: &str, e: impl std::fmt::Display) -> SourceError {
        SourceError::Unavailable(format!("camera {}: {what}: {e}", self.cfg.index))
    }

    fn open(&mut self) -> Result<(), SourceError> {
        let mut last_err = None;
        // YUYV first (every UVC camera has it), grey for monochrome sensors.
        for format in UNCOMPRESSED {
            let want = CameraFormat::new(
                Resolution::new(self.cfg.width, self.cfg.height),
                *format,
                self.cfg.fps,
            );
            let req =
                RequestedFormat::with_formats(RequestedFormatType::Closest(want), UNCOMPRESSED);
            match nokhwa::Camera::new(CameraIndex::Index(self.cfg.index), req) {
                Ok(cam) => {
                    let mut cam = cam;
                    if !UNCOMPRESSED.contains(&cam.frame_format()) {
                        return Err(self.unavailable(
                            "format",
                            format!(
                                "the driver chose {} (only YUYV or GRAY are taken)",
                                cam.frame_format()
                            ),
                        ));
                    }
                    cam.open_stream()
                        .map_err(|e| self.unavailable("opening the stream", e))?;
                    for _ in 0..self.cfg.warmup_frames {
                        // Read and forget: the driver's buffer is reused for the next frame.
                        cam.frame_raw()
                            .map_err(|e| self.unavailable("reading a frame", e))?;
                    }
                    self.open = Some(cam);
                    return Ok(());
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(self.unavailable(
            "cannot open it",
            last_err.map_or_else(|| "no format".to_string(), |e| e.to_string()),
        ))
    }

    fn frames(&mut self) -> Result<Contribution, SourceError> {
        let cam = self.open.as_mut().expect("opened");
        let stride = if cam.frame_format() == FrameFormat::YUYV {
            2
        } else {
            1
        };
        let res = cam.resolution();
        let size = res.width() as usize * res.height() as usize * stride;
        let mut hasher = blake3::Hasher::new();
        let mut credit = 0.0;
        for _ in 0..self.cfg.frames_per_pulse {
            // The driver's buffer is only lent (its memory is reused by the next frame and freed
            // when the stream stops); our copy is wiped by the frame path, and again on drop.
            let mut frame = {
                let raw = cam.frame_raw().map_err(|e| {
                    SourceError::Unavailable(format!(
                        "camera {}: reading a frame: {e}",
                        self.cfg.index
                    ))
                })?;
                if raw.len() < size {
                    return Err(SourceError::Unhealthy(format!(
                        "short frame: {} bytes, expected {size}",
                        raw.len()
                    )));
                }
                Zeroizing::new(raw[..size].to_vec())
            };
            credit += self
                .path
                .take_with_stride(&mut frame, stride, &mut hasher)?;
        }
        Ok(contribution(hasher, credit))
    }
}

impl Device {
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        if self.open.is_none() {
            self.open()?;
        }
        let r = self.frames();
        if matches!(r, Err(SourceError::Unavailable(_))) {
            // Closed, and opened again at the next pulse (a camera unplugged and plugged back).
            self.open = None;
        }
        r
    }
}

type Reply = (u64, Result<Contribution, SourceError>);

/// A real camera: the source the engine sees, talking to the camera thread.
pub struct Camera {
    index: u32,
    wait: Duration,
    ask: mpsc::Sender<u64>,
    answers: mpsc::Receiver<Reply>,
    asked: u64,
    /// The request the thread has not answered yet, if any.
    outstanding: Option<u64>,
}

impl Camera {
    /// A camera source; the device is opened at the first pulse (and again after a failure).
    /// A pulse waits at most `wait` for the frames.
    pub fn new(cfg: CameraConfig, wait: Duration) -> Self {
        let (ask, requests) = mpsc::channel::<u64>();
        let (reply, answers) = mpsc::channel::<Reply>();
        let index = cfg.index;
        std::thread::Builder::new()
            .name(format!("camera-{index}"))
            .spawn(move || {
                let mut device = Device {
                    path: FramePath::new(cfg.checks),
                    cfg,
                    open: None,
                };
                for seq in requests {
                    if reply.send((seq, device.collect())).is_err() {
                        return;
                    }
                }
            })
            .expect("spawning the camera thread");
        Camera {
            index,
            wait,
            ask,
            answers,
            asked: 0,
            outstanding: None,
        }
    }
}

impl EntropySource for Camera {
    fn name(&self) -> &str {
        "camera"
    }

    fn collect(&mut self) -> Result<Contribution, SourceError> {
        // An answer that came too late for its pulse is thrown away: frames are never reused.
        if let Some(seq) = self.outstanding {
            match self.answers.try_recv() {
                Ok((s, _)) if s == seq => self.outstanding = None,
                Ok(_) => {}
                Err(mpsc::TryRecvError::Empty) => {
                    return Err(SourceError::Unavailable(format!(
                        "camera {}: still waiting for frames asked for earlier (the driver is not answering)",
                        self.index
                    )))
                }
                Err(mpsc::TryRecvError::Disconnected) => return Err(self.gone()),
            }
        }
        self.asked += 1;
        let seq = self.asked;
        self.ask.send(seq).map_err(|_| self.gone())?;
        match self.answers.recv_timeout(self.wait) {
            Ok((s, r)) if s == seq => r,
            Ok(_) => Err(self.gone()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.outstanding = Some(seq);
                Err(SourceError::Unavailable(format!(
                    "camera {}: no frames within {} ms (the driver is not answering)",
                    self.index,
                    self.wait.as_millis()
                )))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.gone()),
        }
    }
}

impl Camera {
    fn gone(&self) -> SourceError {
        SourceError::Unavailable(format!("camera {}: its thread has stopped", self.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_camera_is_unavailable_with_its_index_and_the_cause() {
        // Index 63 is not a camera on any machine this runs on.
        let mut cam = Camera::new(
            CameraConfig {
                index: 63,
                width: 640,
                height: 480,
                fps: 30,
                frames_per_pulse: 2,
                warmup_frames: 1,
                checks: FrameChecks::default(),
            },
            Duration::from_secs(5),
        );
        match cam.collect() {
            Err(SourceError::Unavailable(m)) => {
                assert!(m.starts_with("camera 63: cannot open it: "), "{m}")
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
        // And again at the next pulse, without panicking on a half-open device.
        assert!(matches!(cam.collect(), Err(SourceError::Unavailable(_))));
    }
}
