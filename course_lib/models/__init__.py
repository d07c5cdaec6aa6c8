"""Model families taught in the chapters, one module per family.

    gan        GAN losses, DCGAN builders, `GAN`, `ConditionalGAN`, `WGANGP`  (chapter 1)
    pix2pix    degradations, U-Net generator, PatchGAN, `Pix2Pix`            (chapter 1)
    unet       the denoising U-Net with a time (and label) embedding         (chapter 2)
    diffusion  `DiffusionModel`: training, EMA and the guided prediction that
               samplers step with; sampling and editing live in
               `course_lib.sampling`                                         (chapter 2)
    vae        encoder/decoder builders, `VAE`, `CVAE`                       (chapter 3)
"""
