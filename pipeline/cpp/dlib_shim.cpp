// C ABI over dlib's HOG frontal face detector and 68-point shape predictor,
// for pipeline/src/landmarks/dlib.rs. Compiled by pipeline/build.rs at -O2
// (dlib's templates are header code: at -O0 HOG detection is ~70x slower).
//
// Images are passed as packed RGB24 buffers and read in place through a
// small view type that implements dlib's generic image interface, so neither
// detection nor prediction copies the frame. No C++ exception crosses the
// ABI: every entry point catches and writes the message into `err`.

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace mcsfau {

// Read-only RGB24 view with dlib's generic image interface (the free
// functions live in this namespace so argument-dependent lookup finds them).
struct RgbView {
    const dlib::rgb_pixel* data;
    long rows;
    long cols;
};
inline long num_rows(const RgbView& v) { return v.rows; }
inline long num_columns(const RgbView& v) { return v.cols; }
inline const void* image_data(const RgbView& v) { return v.data; }
inline long width_step(const RgbView& v) { return v.cols * 3; }

}  // namespace mcsfau

namespace dlib {
template <>
struct image_traits<mcsfau::RgbView> {
    typedef rgb_pixel pixel_type;
};
}  // namespace dlib

static_assert(sizeof(dlib::rgb_pixel) == 3, "rgb_pixel must be packed RGB24");

namespace {

void write_err(char* err, size_t len, const std::string& msg) {
    if (err == nullptr || len == 0) return;
    size_t n = msg.size() < len - 1 ? msg.size() : len - 1;
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
}

mcsfau::RgbView view(const uint8_t* rgb, int64_t width, int64_t height) {
    return mcsfau::RgbView{reinterpret_cast<const dlib::rgb_pixel*>(rgb), static_cast<long>(height),
                   static_cast<long>(width)};
}

}  // namespace

struct mcsfau_detector {
    dlib::frontal_face_detector det;
};

struct mcsfau_predictor {
    dlib::shape_predictor sp;
};

extern "C" {

// A new HOG frontal face detector (deserialized from dlib's built-in model).
int mcsfau_detector_new(mcsfau_detector** out, char* err, size_t err_len) {
    try {
        auto* d = new mcsfau_detector;
        d->det = dlib::get_frontal_face_detector();
        *out = d;
        return 0;
    } catch (const std::exception& e) {
        write_err(err, err_len, e.what());
        return 1;
    }
}

void mcsfau_detector_free(mcsfau_detector* d) { delete d; }

// Runs the detector on one RGB24 frame. `upsample` doubles the image that
// many times first (finds faces smaller than the detector's 80x80 window).
// Writes up to `max_faces` boxes (left, top, right, bottom; inclusive pixel
// indices of the original frame) and their detection scores, best first, and
// the total number found into `n_found`.
int mcsfau_detector_run(mcsfau_detector* d, const uint8_t* rgb, int64_t width, int64_t height,
                        uint32_t upsample, double adjust_threshold, int64_t* boxes,
                        double* scores, size_t max_faces, size_t* n_found, char* err,
                        size_t err_len) {
    try {
        std::vector<dlib::rect_detection> dets;
        mcsfau::RgbView img = view(rgb, width, height);
        if (upsample == 0) {
            d->det(img, dets, adjust_threshold);
        } else {
            dlib::array2d<dlib::rgb_pixel> up;
            dlib::assign_image(up, img);
            dlib::pyramid_up(up);
            for (uint32_t i = 1; i < upsample; ++i) dlib::pyramid_up(up);
            d->det(up, dets, adjust_threshold);
            // Map boxes back to the original frame as dlib's Python binding
            // does: pyramid_down<2>::rect_down once per doubling.
            dlib::pyramid_down<2> pyr;
            for (auto& r : dets) {
                for (uint32_t i = 0; i < upsample; ++i) r.rect = pyr.rect_down(r.rect);
            }
        }
        *n_found = dets.size();
        for (size_t i = 0; i < dets.size() && i < max_faces; ++i) {
            boxes[4 * i + 0] = dets[i].rect.left();
            boxes[4 * i + 1] = dets[i].rect.top();
            boxes[4 * i + 2] = dets[i].rect.right();
            boxes[4 * i + 3] = dets[i].rect.bottom();
            scores[i] = dets[i].detection_confidence;
        }
        return 0;
    } catch (const std::exception& e) {
        write_err(err, err_len, e.what());
        return 1;
    }
}

// Loads a shape predictor (e.g. shape_predictor_68_face_landmarks.dat).
int mcsfau_predictor_load(const char* path, mcsfau_predictor** out, char* err, size_t err_len) {
    try {
        auto* p = new mcsfau_predictor;
        try {
            dlib::deserialize(path) >> p->sp;
        } catch (...) {
            delete p;
            throw;
        }
        *out = p;
        return 0;
    } catch (const std::exception& e) {
        write_err(err, err_len, e.what());
        return 1;
    }
}

void mcsfau_predictor_free(mcsfau_predictor* p) { delete p; }

size_t mcsfau_predictor_num_parts(const mcsfau_predictor* p) { return p->sp.num_parts(); }

// Predicts the shape inside `box` (left, top, right, bottom). Writes
// `num_parts` (x, y) pairs into `xy`. Thread-safe: the predictor is const.
int mcsfau_predictor_run(const mcsfau_predictor* p, const uint8_t* rgb, int64_t width,
                         int64_t height, const int64_t* box, float* xy, size_t num_parts,
                         char* err, size_t err_len) {
    try {
        if (num_parts != p->sp.num_parts()) {
            write_err(err, err_len, "output buffer does not match the model's part count");
            return 1;
        }
        mcsfau::RgbView img = view(rgb, width, height);
        dlib::rectangle rect(box[0], box[1], box[2], box[3]);
        dlib::full_object_detection shape = p->sp(img, rect);
        for (size_t i = 0; i < num_parts; ++i) {
            xy[2 * i + 0] = static_cast<float>(shape.part(i).x());
            xy[2 * i + 1] = static_cast<float>(shape.part(i).y());
        }
        return 0;
    } catch (const std::exception& e) {
        write_err(err, err_len, e.what());
        return 1;
    }
}

}  // extern "C"
